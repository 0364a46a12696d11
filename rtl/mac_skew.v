`default_nettype none
// mac_skew -- triangular delay line: lane l of the output is lane l of the input delayed
// by l clock cycles (lane 0 passes straight through).  The MAC array uses one for the
// rows of A and one for the columns of B, so that operand k of row i / column j reaches
// PE(i, j) in the same cycle (the systolic wavefront; see docs/microarchitecture.md).
// Datapath only: no reset.
module mac_skew #(
    parameter integer LANES = 8,  // number of lanes (>= 1)
    parameter integer WIDTH = 8   // bits per lane (>= 1)
) (
    /* verilator lint_off UNUSEDSIGNAL */  // with LANES = 1 there is no register to clock
    input  wire                   clk_i,   // clock, all registers on its rising edge
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire [LANES*WIDTH-1:0] data_i,  // lane l in bits [l*WIDTH +: WIDTH]
    output wire [LANES*WIDTH-1:0] data_o   // lane l delayed by l cycles, same packing
);
    generate
        if (LANES < 1) begin : g_bad_lanes
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "mac_skew: parameter LANES = %0d is illegal; it must be >= 1", LANES);
`else
            $error("mac_skew: parameter LANES = %0d is illegal; it must be >= 1", LANES);
`endif
        end
        if (WIDTH < 1) begin : g_bad_width
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "mac_skew: parameter WIDTH = %0d is illegal; it must be >= 1", WIDTH);
`else
            $error("mac_skew: parameter WIDTH = %0d is illegal; it must be >= 1", WIDTH);
`endif
        end
    endgenerate

    genvar l;
    generate
        // (no lanes for an illegal WIDTH, so that it reaches its check above instead of
        // a zero-width part select)
        for (l = 0; l < ((WIDTH >= 1) ? LANES : 0); l = l + 1) begin : g_lane
            if (l == 0) begin : g_pass
                assign data_o[0 +: WIDTH] = data_i[0 +: WIDTH];
            end else if (l == 1) begin : g_one
                reg [WIDTH-1:0] dly_q;
                always @(posedge clk_i) begin
                    dly_q <= data_i[l*WIDTH +: WIDTH];
                end
                assign data_o[l*WIDTH +: WIDTH] = dly_q;
            end else begin : g_chain
                // l stages packed into one vector (so waveform dumps show them); the
                // newest value enters at the bottom, the oldest leaves at the top.
                reg [l*WIDTH-1:0] dly_q;
                always @(posedge clk_i) begin
                    dly_q <= {dly_q[(l-1)*WIDTH-1:0], data_i[l*WIDTH +: WIDTH]};
                end
                assign data_o[l*WIDTH +: WIDTH] = dly_q[(l-1)*WIDTH +: WIDTH];
            end
        end
    endgenerate
endmodule
`default_nettype wire
