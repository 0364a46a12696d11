`default_nettype none
// mac_pe -- one processing element of the output-stationary MAC array (mac_grid).
//
// Holds one output element C[i][j].  Every cycle it forwards its registered operands to
// the right (a) and downwards (b) neighbours and registers their product, prod_q := a_q * b_q
// (the multiplier stage: a DSP block's output register, so the multiply and the 32-bit add
// are in separate cycles).  When en_i is high the product now in prod_q belongs to a
// valid beat -- the operands were in a_q / b_q one cycle earlier -- and the PE accumulates it:
//     acc := (clr_i ? 0 : acc) + prod_q               (signed int8 x int8, int32 wrap)
// and when cap_i is also high the new sum is copied into result (shadow) register bank
// bank_i (res0_q or res1_q), from where the wrapper drains it while acc starts on the
// next tile.  Two banks let one tile's results wait for the drain while the next tile's
// are captured; the wrapper alternates the banks tile by tile.
// Only datapath registers live here, so there is no reset (CONTRIBUTING.md).
module mac_pe (
    input  wire               clk_i,   // clock, all registers on its rising edge
    input  wire signed [7:0]  a_i,     // A operand from the left neighbour (or the row skew)
    input  wire signed [7:0]  b_i,     // B operand from the neighbour above (or the column skew)
    input  wire               en_i,    // the product in prod_q is a valid beat's: accumulate
    input  wire               clr_i,   // with en_i: the beat starts a new sum (acc := product)
    input  wire               cap_i,   // with en_i: the beat ends a tile (res<bank_i> := new sum)
    input  wire               bank_i,  // with en_i and cap_i: the shadow bank that captures (0: res0_q, 1: res1_q)
    output wire signed [7:0]  a_o,     // registered A operand, to the right neighbour
    output wire signed [7:0]  b_o,     // registered B operand, to the neighbour below
    output wire signed [31:0] res0_o,  // shadow register bank 0: the last sum captured into it
    output wire signed [31:0] res1_o   // shadow register bank 1: the last sum captured into it
);
    reg  signed [7:0]  a_q;
    reg  signed [7:0]  b_q;
    reg  signed [15:0] prod_q;   // a_q * b_q of the previous cycle, in [-16256, 16384]
    reg  signed [31:0] acc_q;
    reg  signed [31:0] res0_q;
    reg  signed [31:0] res1_q;

    // acc_next = (clr ? 0 : acc) + prod: the exact int16 product sign-extended to 32 bits
    // (the size cast keeps its signedness); the 32-bit adder wraps (two's complement, as
    // docs/arithmetic.md says).  Written as one expression in the clocked block:
    // event-driven simulators (Icarus) then evaluate it once per valid beat instead of on
    // every operand change.
    always @(posedge clk_i) begin
        a_q    <= a_i;
        b_q    <= b_i;
        prod_q <= a_q * b_q;
        if (en_i) begin
            acc_q <= (clr_i ? 32'sd0 : acc_q) + 32'(prod_q);
        end
        if (en_i && cap_i && !bank_i) begin
            res0_q <= (clr_i ? 32'sd0 : acc_q) + 32'(prod_q);
        end
        if (en_i && cap_i && bank_i) begin
            res1_q <= (clr_i ? 32'sd0 : acc_q) + 32'(prod_q);
        end
    end

    assign a_o    = a_q;
    assign b_o    = b_q;
    assign res0_o = res0_q;
    assign res1_o = res1_q;
endmodule
`default_nettype wire
