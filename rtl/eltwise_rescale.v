// eltwise_rescale: MultiplyByQuantizedMultiplier(x, m0, shift) for shift <= 0 (TFLite's
// "smaller than one" input rescale of ADD / SUB), gemmlowp double rounding, four register
// stages (pure datapath, no control state). The same arithmetic as requant_lane's stages
// 3-6, each stage named after its pymodel.arithmetic.fixedpoint function:
//
//   reg stage  register                    pymodel.arithmetic.fixedpoint function
//   3          srdhm_prod_q                saturating_rounding_doubling_high_mul: x * m0
//   4          srdhm_sum_q, srdhm_rem_q    saturating_rounding_doubling_high_mul: + nudge
//   5          srdhm_q                     saturating_rounding_doubling_high_mul: / 2^31, sat
//   6          rounding_divide_by_pot_q    rounding_divide_by_pot(., e), e = -shift
//
// Registers load every cycle and are not reset (datapath only).
`default_nettype none

module eltwise_rescale (
    input  wire               clk_i,   // clock, rising edge
    input  wire signed [31:0] x_i,     // stage 2: the operand, v * 2^20
    input  wire signed [31:0] m0_i,    // multiplier m0 (constant per job)
    input  wire [4:0]         e_i,     // right shift e = -shift, 0..31 (constant per job)
    output wire signed [31:0] y_o      // stage 6: rounding_divide_by_pot_q
);
    localparam signed [31:0] INT32_MIN = 32'sh8000_0000;
    localparam signed [31:0] INT32_MAX = 32'sh7fff_ffff;
    localparam signed [63:0] NUDGE_POS = 64'sd1073741824;           // 2^30
    localparam signed [63:0] NUDGE_NEG = 64'sd1 - 64'sd1073741824;  // 1 - 2^30

    // ------------------------------------------------------------ stage 3: multiply
    reg signed [63:0] srdhm_prod_q;
    reg               srdhm_sat_q;
    always @(posedge clk_i) begin
        srdhm_prod_q <= x_i * m0_i;
        srdhm_sat_q  <= (x_i == INT32_MIN) && (m0_i == INT32_MIN);
    end

    // ------------------------------------------------------------ stage 4: + nudge
    wire signed [63:0] srdhm_sum_d = srdhm_prod_q + (srdhm_prod_q[63] ? NUDGE_NEG : NUDGE_POS);
    reg  signed [32:0] srdhm_sum_q;
    reg                srdhm_rem_q, srdhm_sat_4_q;
    always @(posedge clk_i) begin
        srdhm_sum_q   <= srdhm_sum_d[63:31];
        srdhm_rem_q   <= srdhm_sum_d[30:0] != 31'd0;
        srdhm_sat_4_q <= srdhm_sat_q;
    end

    // ------------------------------------------------ stage 5: / 2^31 (C truncation)
    wire               srdhm_trunc_d = srdhm_sum_q[32] && srdhm_rem_q;
    wire signed [31:0] srdhm_div_d   = $signed(srdhm_sum_q[31:0]) + $signed({31'd0, srdhm_trunc_d});
    reg  signed [31:0] srdhm_q;
    always @(posedge clk_i) begin
        srdhm_q <= srdhm_sat_4_q ? INT32_MAX : srdhm_div_d;
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
