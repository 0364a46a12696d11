`default_nettype none
// Formal-only stand-in for rtl/requant_lane.v (same ports): the requantize pipeline's
// control properties (credits, FIFO, ordering, stalls) do not depend on the lane's
// arithmetic, which is proved bit-exact by simulation (tests/test_rtl_requant.py); the
// 32 x 32 multiplier would only slow the solver.  Output: the low byte of the input.
module requant_lane #(
    parameter integer SINGLE_ROUNDING = 0   // (unused here: the rounding mode is arithmetic)
) (
    input  wire               clk_i,        // clock (unused here)
    input  wire signed [31:0] acc_i,        // accumulator
    input  wire signed [31:0] bias_i,       // (unused here)
    input  wire signed [31:0] m0_i,         // (unused here)
    input  wire signed [5:0]  shift_i,      // (unused here)
    input  wire signed [7:0]  zp_i,         // (unused here)
    input  wire signed [7:0]  act_min_i,    // (unused here)
    input  wire signed [7:0]  act_max_i,    // (unused here)
    output wire signed [7:0]  clamp_o       // acc_i[7:0]
);
    assign clamp_o = acc_i[7:0];
endmodule
`default_nettype wire
