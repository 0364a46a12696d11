// requant_lane: one lane of the requantize pipeline (pure datapath, no control state).
//
// Implements pymodel.fixedpoint.requantize for one int32 accumulator per cycle, one
// register stage per pymodel function, in the same order (docs/arithmetic.md 5.2, 5.4):
//
//   stage 1  add_bias_q                      = wrap32(acc + bias)
//   stage 2  left_shift_q                    = wrap32(add_bias_q << max(shift, 0))
//   stage 3a srdhm_prod_q                    = left_shift_q * m0        (64-bit product)
//   stage 3b srdhm_q                         = (srdhm_prod_q + nudge) / 2^31, saturated
//   stage 4  rounding_divide_by_pot_q        = RoundingDivideByPOT(srdhm_q, max(-shift, 0))
//   stage 5  add_zero_point_q                = wrap32(rounding_divide_by_pot_q + zp)
//   stage 6  clamp_o (registered by the caller, requant_pipeline's output FIFO)
//            = min(max(add_zero_point_q, act_min), act_max)
//
// saturating_rounding_doubling_high_mul takes two register stages (3a, 3b): the 32x32
// multiply gets a stage of its own (it maps onto a DSP block with its output register),
// and the nudge / truncating divide / saturation get the next one.
//
// The inputs are the pipeline's stage 0 (param_rd) registers: the accumulator and the
// channel parameters of the same beat, all valid in the same cycle. Every parameter a
// later stage needs travels down the pipeline beside the data, so each result uses the
// parameters its beat was accepted with. The lane has no valid bits (requant_pipeline
// keeps them); its registers load every cycle and are not reset (datapath only).
`default_nettype none

module requant_lane (
    input  wire               clk_i,        // clock, rising edge
    input  wire signed [31:0] acc_i,        // stage 0: int32 accumulator of this lane
    input  wire signed [31:0] bias_i,       // stage 0: int32 bias of the lane's channel
    input  wire signed [31:0] m0_i,         // stage 0: int32 multiplier m0 (any bit pattern)
    input  wire signed [5:0]  shift_i,      // stage 0: shift, contract range -31..30
    input  wire signed [7:0]  zp_i,         // stage 0: int8 output zero point
    input  wire signed [7:0]  act_min_i,    // stage 0: int8 lower clamp bound
    input  wire signed [7:0]  act_max_i,    // stage 0: int8 upper clamp bound (>= act_min)
    output wire signed [7:0]  clamp_o       // stage 6 value (combinational from stage 5)
);
    localparam signed [31:0] INT32_MIN = 32'sh8000_0000;
    localparam signed [31:0] INT32_MAX = 32'sh7fff_ffff;
    localparam signed [63:0] NUDGE_POS = 64'sd1073741824;       // 2^30
    localparam signed [63:0] NUDGE_NEG = 64'sd1 - 64'sd1073741824; // 1 - 2^30

    // ---------------------------------------------------------------- stage 1: add_bias
    reg signed [31:0] add_bias_q;
    reg signed [31:0] m0_1_q;
    reg signed [5:0]  shift_1_q;
    reg signed [7:0]  zp_1_q, act_min_1_q, act_max_1_q;
    always @(posedge clk_i) begin
        add_bias_q  <= acc_i + bias_i;          // 32-bit adder: wraps mod 2^32
        m0_1_q      <= m0_i;
        shift_1_q   <= shift_i;
        zp_1_q      <= zp_i;
        act_min_1_q <= act_min_i;
        act_max_1_q <= act_max_i;
    end

    // -------------------------------------------------------------- stage 2: left_shift
    // Left shift by max(shift, 0) (0..30); bits shifted out of 32 bits are lost (wraps).
    // The right-shift exponent max(-shift, 0) (0..31) of stage 4 is formed here too.
    wire [4:0] left_amount_d  = shift_1_q[5] ? 5'd0 : shift_1_q[4:0];
    wire [5:0] neg_shift_d    = 6'd0 - $unsigned(shift_1_q);       // -shift, two's complement
    wire [4:0] right_amount_d = shift_1_q[5] ? neg_shift_d[4:0] : 5'd0;
    // neg_shift_d[5] is set only for shift = -32, outside the contract (-31..30).
    wire unused_neg_shift = neg_shift_d[5];
    reg signed [31:0] left_shift_q;
    reg signed [31:0] m0_2_q;
    reg        [4:0]  exponent_2_q;
    reg signed [7:0]  zp_2_q, act_min_2_q, act_max_2_q;
    always @(posedge clk_i) begin
        left_shift_q <= add_bias_q <<< left_amount_d;
        m0_2_q       <= m0_1_q;
        exponent_2_q <= right_amount_d;
        zp_2_q       <= zp_1_q;
        act_min_2_q  <= act_min_1_q;
        act_max_2_q  <= act_max_1_q;
    end

    // ------------------------- stage 3a: saturating_rounding_doubling_high_mul (multiply)
    // 32 x 32 -> 64-bit signed product; the one overflow case (INT32_MIN * INT32_MIN) is
    // flagged from the operands.
    wire signed [63:0] srdhm_prod_d = left_shift_q * m0_2_q;
    reg  signed [63:0] srdhm_prod_q;
    reg                srdhm_sat_q;
    reg        [4:0]   exponent_3_q;
    reg signed [7:0]   zp_3_q, act_min_3_q, act_max_3_q;
    always @(posedge clk_i) begin
        srdhm_prod_q <= srdhm_prod_d;
        srdhm_sat_q  <= (left_shift_q == INT32_MIN) && (m0_2_q == INT32_MIN);
        exponent_3_q <= exponent_2_q;
        zp_3_q       <= zp_2_q;
        act_min_3_q  <= act_min_2_q;
        act_max_3_q  <= act_max_2_q;
    end

    // ------------------ stage 3b: saturating_rounding_doubling_high_mul (nudge, divide)
    // nudge = p >= 0 ? 2^30 : 1 - 2^30 (sign-dependent, gemmlowp); |p| <= 2^62 so the sum
    // fits 64 bits. C division by 2^31 truncates toward zero: floor (arithmetic shift)
    // plus one for a negative sum with a non-zero remainder.
    wire signed [63:0] srdhm_nudge_d = srdhm_prod_q[63] ? NUDGE_NEG : NUDGE_POS;
    wire signed [63:0] srdhm_sum_d   = srdhm_prod_q + srdhm_nudge_d;
    wire               srdhm_trunc_d = srdhm_sum_d[63] && (srdhm_sum_d[30:0] != 31'd0);
    wire signed [31:0] srdhm_floor_d = $signed(srdhm_sum_d[62:31]); // low 32 bits of >>> 31
    wire signed [31:0] srdhm_div_d   = srdhm_floor_d + $signed({31'd0, srdhm_trunc_d});
    reg  signed [31:0] srdhm_q;
    reg        [4:0]   exponent_4_q;
    reg signed [7:0]   zp_4_q, act_min_4_q, act_max_4_q;
    always @(posedge clk_i) begin
        srdhm_q      <= srdhm_sat_q ? INT32_MAX : srdhm_div_d;
        exponent_4_q <= exponent_3_q;
        zp_4_q       <= zp_3_q;
        act_min_4_q  <= act_min_3_q;
        act_max_4_q  <= act_max_3_q;
    end
    // The quotient fits int32 except in the saturation case, which overrides it, so the
    // quotient's bit 32 (srdhm_sum_d[63]) is needed only as the sign.

    // ---------------------------------------------------- stage 4: rounding_divide_by_pot
    // mask = 2^e - 1; remainder = x & mask; threshold = (mask >> 1) + (x < 0);
    // result = (x >>> e) + (remainder > threshold): nearest, ties away from zero.
    wire [31:0]        rdbp_mask_d      = (32'd1 << exponent_4_q) - 32'd1;
    wire [31:0]        rdbp_remainder_d = $unsigned(srdhm_q) & rdbp_mask_d;
    wire [31:0]        rdbp_threshold_d = (rdbp_mask_d >> 1) + {31'd0, srdhm_q[31]};
    wire signed [31:0] rdbp_shifted_d   = srdhm_q >>> exponent_4_q;
    wire               rdbp_round_d     = rdbp_remainder_d > rdbp_threshold_d;
    reg  signed [31:0] rounding_divide_by_pot_q;
    reg  signed [7:0]  zp_5_q, act_min_5_q, act_max_5_q;
    always @(posedge clk_i) begin
        rounding_divide_by_pot_q <= rdbp_shifted_d + $signed({31'd0, rdbp_round_d});
        zp_5_q                   <= zp_4_q;
        act_min_5_q              <= act_min_4_q;
        act_max_5_q              <= act_max_4_q;
    end

    // ----------------------------------------------------------- stage 5: add_zero_point
    reg signed [31:0] add_zero_point_q;
    reg signed [7:0]  act_min_6_q, act_max_6_q;
    always @(posedge clk_i) begin
        // zp sign-extended to 32 bits; the 32-bit adder wraps mod 2^32
        add_zero_point_q <= rounding_divide_by_pot_q + $signed({{24{zp_5_q[7]}}, zp_5_q});
        act_min_6_q      <= act_min_5_q;
        act_max_6_q      <= act_max_5_q;
    end

    // -------------------------------------------------------------------- stage 6: clamp
    // min(max(x, act_min), act_max) in 32 bits, as pymodel; with act_min <= act_max the
    // result lies in [act_min, act_max] and its low 8 bits are the int8 output.
    wire signed [31:0] clamp_lo_d  = {{24{act_min_6_q[7]}}, act_min_6_q};
    wire signed [31:0] clamp_hi_d  = {{24{act_max_6_q[7]}}, act_max_6_q};
    wire signed [31:0] clamp_max_d = (add_zero_point_q < clamp_lo_d) ? clamp_lo_d
                                                                     : add_zero_point_q;
    wire signed [31:0] clamp_d     = (clamp_max_d > clamp_hi_d) ? clamp_hi_d : clamp_max_d;
    assign clamp_o = clamp_d[7:0];
    // The upper 24 bits are the sign extension of clamp_o (act_min/act_max are int8).
    wire unused_clamp = &{1'b0, clamp_d[31:8]};

endmodule

`default_nettype wire
