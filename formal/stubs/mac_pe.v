`default_nettype none
// Formal-only stand-in for rtl/mac_pe.v (same ports, same registers, same enables, the
// same multiplier stage prod_q): the "product" is the concatenated operands and the
// accumulate an XOR instead of a multiply-add, so the solver keeps the
// bank / capture / drain behaviour the mac_array properties talk about without the 8 x 8
// multipliers.  The PE's arithmetic is checked exhaustively by simulation
// (tests/test_rtl_pe_exhaustive.py).
module mac_pe (
    input  wire               clk_i,   // clock
    input  wire signed [7:0]  a_i,     // A operand in
    input  wire signed [7:0]  b_i,     // B operand in
    input  wire               en_i,    // accumulate the registered product
    input  wire               clr_i,   // with en_i: start a new "sum"
    input  wire               cap_i,   // with en_i: capture into bank bank_i
    input  wire               bank_i,  // shadow bank
    output wire signed [7:0]  a_o,     // registered A operand
    output wire signed [7:0]  b_o,     // registered B operand
    output wire signed [31:0] res0_o,  // shadow bank 0
    output wire signed [31:0] res1_o   // shadow bank 1
);
    reg signed [7:0]  a_q, b_q;
    reg        [15:0] prod_q;     // the multiplier stage: operands of the previous cycle
    reg signed [31:0] acc_q, res0_q, res1_q;
    wire [31:0] next = (clr_i ? 32'd0 : acc_q) ^ {16'd0, prod_q};
    always @(posedge clk_i) begin
        a_q <= a_i;
        b_q <= b_i;
        prod_q <= {a_q, b_q};
        if (en_i) acc_q <= next;
        if (en_i && cap_i && !bank_i) res0_q <= next;
        if (en_i && cap_i && bank_i) res1_q <= next;
    end
    assign a_o = a_q;
    assign b_o = b_q;
    assign res0_o = res0_q;
    assign res1_o = res1_q;
endmodule
`default_nettype wire
