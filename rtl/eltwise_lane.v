// eltwise_lane: one lane of the element-wise unit, TFLite int8 ADD / SUB / MUL up to the
// output rescale (pure datapath, no control state).
//
// Each register stage belongs to one pymodel.ops.eltwise_stages function (house rule 2;
// docs/arithmetic.md section 10), in the same order; the output rescale, zero point and
// clamp are the requantize pipeline's (requant_pipeline, bias 0):
//
//   reg stage  register                       pymodel function
//   1          eltwise_offset_q (a, b)        eltwise_offset: x - zp                   9 bits
//   2          eltwise_left_shift_q (a, b)    eltwise_left_shift: v * 2^20 (ADD, SUB)  29 bits
//              eltwise_multiply_q             eltwise_multiply: v1 * v2 (MUL)          17 bits
//   3-6        eltwise_rescale (a, b)         eltwise_rescale:
//   3          srdhm_prod_q                     u * m0 = (v * m0) * 2^20 (in logic)
//   4          srdhm_sum_q, srdhm_rem_q         + nudge
//   5          srdhm_q                          / 2^31 (no saturation: |u| < 2^28)
//   6          rounding_divide_by_pot_q         rounding_divide_by_pot: / 2^-shift
//   7          eltwise_combine_q              eltwise_combine: s1 + s2 (ADD), s1 - s2
//                                             (SUB), the product (MUL)
//
// The inputs' rescales (multiply_by_quantized_multiplier with shift <= 0: no left shift)
// are stages 3-6 for both operands side by side -- requant_lane's stages 3-6 (gemmlowp
// double rounding) for an operand v * 2^20 (docs/arithmetic.md 10.1). Operand values: |v * 2^20| <= 255 * 2^20 < 2^28,
// so the products fit 60 bits and the sum of two rescaled operands fits int32.
// Registers load every cycle and are not reset (datapath only).
`default_nettype none

module eltwise_lane (
    input  wire               clk_i,       // clock, rising edge
    input  wire [1:0]         op_i,        // 0 ADD, 1 SUB, 2 MUL (constant per job)
    input  wire signed [7:0]  a_i,         // stage 0: operand 1 (int8)
    input  wire signed [7:0]  b_i,         // stage 0: operand 2 (int8)
    input  wire signed [7:0]  zp_a_i,      // operand 1 zero point
    input  wire signed [7:0]  zp_b_i,      // operand 2 zero point
    input  wire signed [31:0] m_a_i,       // operand 1 multiplier m0 (ADD / SUB)
    input  wire [4:0]         e_a_i,       // operand 1 right shift -shift, 0..31
    input  wire signed [31:0] m_b_i,       // operand 2 multiplier m0
    input  wire [4:0]         e_b_i,       // operand 2 right shift
    output wire signed [31:0] combine_o    // stage 7: eltwise_combine_q
);
    localparam [1:0] OP_SUB = 2'd1;
    localparam [1:0] OP_MUL = 2'd2;

    // ----------------------------------------------- register stage 1: eltwise_offset
    reg signed [8:0] eltwise_offset_a_q, eltwise_offset_b_q;
    always @(posedge clk_i) begin
        eltwise_offset_a_q <= $signed({a_i[7], a_i}) - $signed({zp_a_i[7], zp_a_i});
        eltwise_offset_b_q <= $signed({b_i[7], b_i}) - $signed({zp_b_i[7], zp_b_i});
    end

    // ------------------------ register stage 2: eltwise_left_shift / eltwise_multiply
    reg signed [31:0] eltwise_left_shift_a_q, eltwise_left_shift_b_q;
    reg signed [17:0] eltwise_multiply_q;
    always @(posedge clk_i) begin
        eltwise_left_shift_a_q <= {{3{eltwise_offset_a_q[8]}}, eltwise_offset_a_q, 20'd0};
        eltwise_left_shift_b_q <= {{3{eltwise_offset_b_q[8]}}, eltwise_offset_b_q, 20'd0};
        eltwise_multiply_q     <= eltwise_offset_a_q * eltwise_offset_b_q;
    end

    // ------------------- register stages 3-6: the two operands' rescales side by side
    wire signed [31:0] rdbp_a, rdbp_b;
    eltwise_rescale u_rescale_a (
        .clk_i(clk_i), .x_i(eltwise_left_shift_a_q), .m0_i(m_a_i), .e_i(e_a_i), .y_o(rdbp_a));
    eltwise_rescale u_rescale_b (
        .clk_i(clk_i), .x_i(eltwise_left_shift_b_q), .m0_i(m_b_i), .e_i(e_b_i), .y_o(rdbp_b));

    // the product waits beside the rescales (stages 3..6)
    reg signed [17:0] mul_3_q, mul_4_q, mul_5_q, mul_6_q;
    always @(posedge clk_i) begin
        mul_3_q <= eltwise_multiply_q;
        mul_4_q <= mul_3_q;
        mul_5_q <= mul_4_q;
        mul_6_q <= mul_5_q;
    end

    // ---------------------------------------------- register stage 7: eltwise_combine
    reg signed [31:0] eltwise_combine_q;
    always @(posedge clk_i) begin
        case (op_i)
            OP_MUL:  eltwise_combine_q <= {{14{mul_6_q[17]}}, mul_6_q};
            OP_SUB:  eltwise_combine_q <= rdbp_a - rdbp_b;
            default: eltwise_combine_q <= rdbp_a + rdbp_b;
        endcase
    end
    assign combine_o = eltwise_combine_q;

endmodule

`default_nettype wire
