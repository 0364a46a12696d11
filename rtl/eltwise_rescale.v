// eltwise_rescale: MultiplyByQuantizedMultiplier(x, m0, shift) for shift <= 0 (TFLite's
// "smaller than one" input rescale of ADD / SUB), gemmlowp double rounding, four register
// stages (pure datapath, no control state). The same arithmetic as requant_lane's stages
// 3-6, each stage named after its pymodel.arithmetic.fixedpoint function:
//
//   reg stage  register                    pymodel.ops.eltwise_stages.eltwise_rescale step
//   3          srdhm_prod_q                saturating_rounding_doubling_high_mul: x * m0,
//                                           formed as (v * m0) * 2^20
//   4          srdhm_sum_q, srdhm_rem_q    saturating_rounding_doubling_high_mul: + nudge
//   5          srdhm_q                     saturating_rounding_doubling_high_mul: / 2^31
//   6          rounding_divide_by_pot_q    rounding_divide_by_pot(., e), e = -shift
//
// The operand is x = v * 2^20 with |v| <= 255 (eltwise_left_shift of a 9-bit offset
// value), so x * m0 = (v * m0) * 2^20: stage 3 forms the 9 x 32-bit product v * m0 as the
// sum of v's nine partial products in logic -- no DSP block (the whole top's multipliers
// exceed an ECP5-85's 156 otherwise, docs/synthesis.md) -- and SRDHM's saturation case
// (x = m0 = INT32_MIN) cannot occur, |x| < 2^28 (docs/arithmetic.md section 10).
// Registers load every cycle and are not reset (datapath only).
`default_nettype none

module eltwise_rescale (
    input  wire               clk_i,   // clock, rising edge
    input  wire signed [31:0] x_i,     // stage 2: the operand, v * 2^20 with |v| <= 255
    input  wire signed [31:0] m0_i,    // multiplier m0 (constant per job)
    input  wire [4:0]         e_i,     // right shift e = -shift, 0..31 (constant per job)
    output wire signed [31:0] y_o      // stage 6: rounding_divide_by_pot_q
);
    localparam signed [63:0] NUDGE_POS = 64'sd1073741824;           // 2^30
    localparam signed [63:0] NUDGE_NEG = 64'sd1 - 64'sd1073741824;  // 1 - 2^30

    // ------------------------------------------------------------ stage 3: multiply
    // v * m0 = sum_{i<8} v[i] * m0 * 2^i - v[8] * m0 * 2^8 (v two's complement, 9 bits),
    // written as masked partial products so that Yosys sums them as one adder tree.
    wire signed [8:0]  v_d  = x_i[28:20];
    wire unused_x = &{1'b0, x_i[31:29], x_i[19:0]};   // sign copies and zeros (contract)
    wire signed [40:0] m0_w = {{9{m0_i[31]}}, m0_i};
    wire signed [40:0] pp0 = m0_w & {41{v_d[0]}};
    wire signed [40:0] pp1 = (m0_w & {41{v_d[1]}}) <<< 1;
    wire signed [40:0] pp2 = (m0_w & {41{v_d[2]}}) <<< 2;
    wire signed [40:0] pp3 = (m0_w & {41{v_d[3]}}) <<< 3;
    wire signed [40:0] pp4 = (m0_w & {41{v_d[4]}}) <<< 4;
    wire signed [40:0] pp5 = (m0_w & {41{v_d[5]}}) <<< 5;
    wire signed [40:0] pp6 = (m0_w & {41{v_d[6]}}) <<< 6;
    wire signed [40:0] pp7 = (m0_w & {41{v_d[7]}}) <<< 7;
    wire signed [40:0] pp8 = (m0_w & {41{v_d[8]}}) <<< 8;
    wire signed [40:0] vm_d = pp0 + pp1 + pp2 + pp3 + pp4 + pp5 + pp6 + pp7 - pp8;  // |v m0| <= 2^39
    reg signed [63:0] srdhm_prod_q;
    always @(posedge clk_i) begin
        srdhm_prod_q <= {{3{vm_d[40]}}, vm_d, 20'd0};
    end

    // ------------------------------------------------------------ stage 4: + nudge
    wire signed [63:0] srdhm_sum_d = srdhm_prod_q + (srdhm_prod_q[63] ? NUDGE_NEG : NUDGE_POS);
    reg  signed [32:0] srdhm_sum_q;
    reg                srdhm_rem_q;
    always @(posedge clk_i) begin
        srdhm_sum_q   <= srdhm_sum_d[63:31];
        srdhm_rem_q   <= srdhm_sum_d[30:0] != 31'd0;
    end

    // ------------------------------------------------ stage 5: / 2^31 (C truncation)
    // No saturation: |x| < 2^28, so x = m0 = INT32_MIN never happens. |x * m0| < 2^59, so
    // the quotient fits 29 bits and srdhm_sum_q[32:31] are sign copies.
    wire               srdhm_trunc_d = srdhm_sum_q[32] && srdhm_rem_q;
    wire signed [31:0] srdhm_div_d   = $signed(srdhm_sum_q[31:0]) + $signed({31'd0, srdhm_trunc_d});
    reg  signed [31:0] srdhm_q;
    always @(posedge clk_i) begin
        srdhm_q <= srdhm_div_d;
    end

    // ------------------------------------------------ stage 6: rounding_divide_by_pot
    // mask = 2^e - 1; remainder = x & mask; threshold = (mask >> 1) + (x < 0);
    // result = (x >>> e) + (remainder > threshold). The mask and both candidate thresholds
    // depend on e only: they are registered from e_i (constant during a job: the
    // configuration changes only while the unit is idle, and a value reaches stage 6 three
    // edges after it entered stage 3), so that stage 6 is one compare and a select, as in
    // requant_lane (timing, docs/synthesis.md).
    reg  [31:0]        mask_q, thr_pos_q, thr_neg_q;
    always @(posedge clk_i) begin
        mask_q    <= (32'd1 << e_i) - 32'd1;
        thr_pos_q <= ((32'd1 << e_i) - 32'd1) >> 1;
        thr_neg_q <= (((32'd1 << e_i) - 32'd1) >> 1) + 32'd1;
    end
    wire [31:0]        remainder_d = $unsigned(srdhm_q) & mask_q;
    wire [31:0]        threshold_d = srdhm_q[31] ? thr_neg_q : thr_pos_q;
    wire signed [31:0] shifted_d   = srdhm_q >>> e_i;
    wire signed [31:0] shifted_inc_d = shifted_d + 32'sd1;   // beside the compare, then selected
    reg  signed [31:0] rounding_divide_by_pot_q;
    always @(posedge clk_i) begin
        rounding_divide_by_pot_q <= (remainder_d > threshold_d) ? shifted_inc_d : shifted_d;
    end
    assign y_o = rounding_divide_by_pot_q;

endmodule

`default_nettype wire
