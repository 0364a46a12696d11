// requant_lane: one lane of the requantize pipeline (pure datapath, no control state).
//
// Implements pymodel.arithmetic.fixedpoint.requantize (rounding = "double" or "single",
// the parameter SINGLE_ROUNDING) for one int32 accumulator per cycle: every register
// stage belongs to one pymodel.arithmetic.fixedpoint function, in the same order
// (docs/arithmetic.md 5.2 and the stage table 5.4):
//
//   reg stage  register                    pymodel.arithmetic.fixedpoint function
//   0          (requant_pipeline: acc_q,   -- parameter read (inputs of this module)
//               parameter memory read)
//   1          add_bias_q                  add_bias
//
//   SINGLE_ROUNDING = 0 (gemmlowp double rounding, TFLite's default build):
//   2          left_shift_q                left_shift
//   3          srdhm_hh/hl/lh/ll_q         saturating_rounding_doubling_high_mul: a * b,
//                                           four 17 x 17 partial products
//   3b         srdhm_prod_q                saturating_rounding_doubling_high_mul: a * b,
//                                           their sum (exact 64-bit product)
//   4          g_double.srdhm_sum_q, _rem_q  saturating_rounding_doubling_high_mul: + nudge
//   5          g_double.srdhm_q            saturating_rounding_doubling_high_mul: / 2^31, sat
//   6          rounding_divide_by_pot_q    rounding_divide_by_pot
//
//   SINGLE_ROUNDING = 1 (TFLITE_SINGLE_ROUNDING):
//   2          left_shift_q                (x1 unchanged: the shift is in total_shift;
//               g_single.total_shift_2_q    total_shift = 31 - shift, 1..62)
//   3          srdhm_hh/hl/lh/ll_q         single_rounding_multiply: x * m0, partial products
//   3b         srdhm_prod_q                single_rounding_multiply: x * m0, their sum
//   4          g_single.single_sum_q       single_rounding_multiply: + 2^(total_shift - 1)
//   5          g_single.single_round_q     single_rounding_multiply: >> total_shift, low 32
//   6          rounding_divide_by_pot_q    (exponent 0: passes the value through)
//
//   7          add_zero_point_q            add_zero_point
//   8          clamp_o (combinational;     clamp
//               registered by the caller's output FIFO)
//
// saturating_rounding_doubling_high_mul (and single_rounding_multiply) take four
// register stages for timing: the 32 x 32 multiply as four partial products (DSP blocks
// with their output registers, stage 3) and their sum (stage 3b), the 64-bit rounding
// addition, and the divide (truncating increment and saturation; single rounding: a
// 64-bit arithmetic shift by 1..62). Stages 4..8 are loaded one edge later than their
// numbers say (3b comes first): ten register stages, 0..8 and 3b.
//
// The inputs are register stage 0: the accumulator and the channel parameters of the
// same beat, all valid in the same cycle. Every parameter a later stage needs travels
// down the pipeline beside the data (a register x_N_q holds x in register stage N), so
// each result uses the parameters its beat was accepted with. The lane has no valid
// bits (requant_pipeline keeps them); its registers load every cycle and are not reset
// (datapath only).
`default_nettype none

module requant_lane #(
    parameter integer SINGLE_ROUNDING = 0   // 0: gemmlowp double rounding; 1: TFLITE_SINGLE_ROUNDING
) (
    input  wire               clk_i,        // clock, rising edge
    input  wire signed [31:0] acc_i,        // stage 0: int32 accumulator of this lane
    input  wire signed [31:0] bias_i,       // stage 0: int32 bias of the lane's channel
    input  wire signed [31:0] m0_i,         // stage 0: int32 multiplier m0 (any bit pattern; >= 0 when SINGLE_ROUNDING)
    input  wire signed [5:0]  shift_i,      // stage 0: shift, contract range -31..30
    input  wire signed [7:0]  zp_i,         // stage 0: int8 output zero point
    input  wire signed [7:0]  act_min_i,    // stage 0: int8 lower clamp bound
    input  wire signed [7:0]  act_max_i,    // stage 0: int8 upper clamp bound (>= act_min)
    output wire signed [7:0]  clamp_o       // stage 8 value (combinational from stage 7; ten register stages with 3b)
);
    localparam signed [31:0] INT32_MIN = 32'sh8000_0000;
    localparam signed [31:0] INT32_MAX = 32'sh7fff_ffff;
    localparam signed [63:0] NUDGE_POS = 64'sd1073741824;       // 2^30
    localparam signed [63:0] NUDGE_NEG = 64'sd1 - 64'sd1073741824; // 1 - 2^30

    generate
        if (SINGLE_ROUNDING != 0 && SINGLE_ROUNDING != 1) begin : g_bad_params
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "requant_lane: SINGLE_ROUNDING = %0d: need 0 (double rounding) or 1 (single rounding)",
                           SINGLE_ROUNDING);
`else
            $error("requant_lane: SINGLE_ROUNDING = %0d: need 0 (double rounding) or 1 (single rounding)",
                   SINGLE_ROUNDING);
`endif
        end
    endgenerate

    // ------------------------------------------------------- register stage 1: add_bias
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

    // ----------------------------------------------------- register stage 2: left_shift
    // Left shift by max(shift, 0) (0..30); bits shifted out of 32 bits are lost (wraps).
    // The right-shift exponent max(-shift, 0) (0..31) of stage 6 is formed here too.
    // Single rounding shifts neither here nor in stage 6 (both amounts 0): its one
    // rounding shift by 31 - shift is in stages 4-5 (g_single).
    localparam SINGLE = (SINGLE_ROUNDING == 1);
    wire [4:0] left_amount_d  = (SINGLE || shift_1_q[5]) ? 5'd0 : shift_1_q[4:0];
    wire [5:0] neg_shift_d    = 6'd0 - $unsigned(shift_1_q);       // -shift, two's complement
    wire [4:0] right_amount_d = (!SINGLE && shift_1_q[5]) ? neg_shift_d[4:0] : 5'd0;
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

    // ------------- register stage 3: saturating_rounding_doubling_high_mul (multiply)
    // 32 x 32 -> 64-bit signed product in two register stages, so that the multiplier
    // blocks and the adder that combines them are in separate cycles (the one-cycle
    // product was the ECP5 critical path, docs/synthesis.md). Stage 3 registers the four
    // 17 x 17-bit partial products of a = ah * 2^16 + al, b = bh * 2^16 + bl (ah, bh
    // signed, al, bl unsigned): one 18 x 18 DSP multiplier each. Both modes use it; the
    // one overflow case of SRDHM (INT32_MIN * INT32_MIN) is flagged from the operands
    // (g_double).
    wire signed [16:0] srdhm_ah_d = $signed({left_shift_q[31], left_shift_q[31:16]});
    wire signed [16:0] srdhm_al_d = $signed({1'b0, left_shift_q[15:0]});
    wire signed [16:0] srdhm_bh_d = $signed({m0_2_q[31], m0_2_q[31:16]});
    wire signed [16:0] srdhm_bl_d = $signed({1'b0, m0_2_q[15:0]});
    reg  signed [33:0] srdhm_hh_q, srdhm_hl_q, srdhm_lh_q, srdhm_ll_q;   // partial products
    reg        [4:0]   exponent_3a_q;
    reg signed [7:0]   zp_3a_q, act_min_3a_q, act_max_3a_q;
    always @(posedge clk_i) begin
        srdhm_hh_q    <= srdhm_ah_d * srdhm_bh_d;
        srdhm_hl_q    <= srdhm_ah_d * srdhm_bl_d;
        srdhm_lh_q    <= srdhm_al_d * srdhm_bh_d;
        srdhm_ll_q    <= srdhm_al_d * srdhm_bl_d;
        exponent_3a_q <= exponent_2_q;
        zp_3a_q       <= zp_2_q;
        act_min_3a_q  <= act_min_2_q;
        act_max_3a_q  <= act_max_2_q;
    end

    // Stage 3b: the product, a * b = hh * 2^32 + (hl + lh) * 2^16 + ll (exact in 64 bits).
    wire signed [63:0] srdhm_prod_d = ($signed({{30{srdhm_hh_q[33]}}, srdhm_hh_q}) <<< 32)
                                    + (($signed({{30{srdhm_hl_q[33]}}, srdhm_hl_q})
                                        + $signed({{30{srdhm_lh_q[33]}}, srdhm_lh_q})) <<< 16)
                                    + $signed({{30{srdhm_ll_q[33]}}, srdhm_ll_q});
    reg  signed [63:0] srdhm_prod_q;
    reg        [4:0]   exponent_3_q;
    reg signed [7:0]   zp_3_q, act_min_3_q, act_max_3_q;
    always @(posedge clk_i) begin
        srdhm_prod_q <= srdhm_prod_d;
        exponent_3_q <= exponent_3a_q;
        zp_3_q       <= zp_3a_q;
        act_min_3_q  <= act_min_3a_q;
        act_max_3_q  <= act_max_3a_q;
    end

    // Stage 6's mask depends on the shift parameter only; it is formed in stage 4 (and its
    // thresholds in stage 5) so that stage 6 is one compare and one add.
    wire [31:0]        rdbp_mask_d   = (32'd1 << exponent_3_q) - 32'd1;   // 2^e - 1
    reg        [4:0]   exponent_4_q;
    reg        [31:0]  rdbp_mask_4_q;
    reg signed [7:0]   zp_4_q, act_min_4_q, act_max_4_q;
    always @(posedge clk_i) begin
        exponent_4_q  <= exponent_3_q;
        rdbp_mask_4_q <= rdbp_mask_d;
        zp_4_q        <= zp_3_q;
        act_min_4_q   <= act_min_3_q;
        act_max_4_q   <= act_max_3_q;
    end

    // threshold = (mask >> 1) + (x < 0), both candidates (x's sign is known in stage 6)
    wire [31:0]        rdbp_thr_pos_d = rdbp_mask_4_q >> 1;
    wire [31:0]        rdbp_thr_neg_d = (rdbp_mask_4_q >> 1) + 32'd1;
    reg        [4:0]   exponent_5_q;
    reg        [31:0]  rdbp_mask_5_q, rdbp_thr_pos_5_q, rdbp_thr_neg_5_q;
    reg signed [7:0]   zp_5_q, act_min_5_q, act_max_5_q;
    always @(posedge clk_i) begin
        exponent_5_q     <= exponent_4_q;
        rdbp_mask_5_q    <= rdbp_mask_4_q;
        rdbp_thr_pos_5_q <= rdbp_thr_pos_d;
        rdbp_thr_neg_5_q <= rdbp_thr_neg_d;
        zp_5_q           <= zp_4_q;
        act_min_5_q      <= act_min_4_q;
        act_max_5_q      <= act_max_4_q;
    end

    // Register stages 3 (flags), 4 and 5 of the rounding multiply, one branch per mode.
    // mul_5 is the stage-5 result: SRDHM's (double) or single_rounding_multiply's (single).
    wire signed [31:0] mul_5;
    generate
        if (SINGLE_ROUNDING == 0) begin : g_double
            // saturation flag, formed in stage 3 from the operands, stage 3b beside the sum
            reg srdhm_sat_3_q, srdhm_sat_q;
            always @(posedge clk_i) begin
                srdhm_sat_3_q <= (left_shift_q == INT32_MIN) && (m0_2_q == INT32_MIN);
                srdhm_sat_q   <= srdhm_sat_3_q;
            end

            // ---- register stage 4: saturating_rounding_doubling_high_mul (add nudge)
            // nudge = p >= 0 ? 2^30 : 1 - 2^30 (sign-dependent, gemmlowp); |p| <= 2^62, so
            // the sum fits 64 bits. Only the quotient bits sum[63:31] and
            // "sum[30:0] != 0" (needed by the truncating divide of stage 5) are kept.
            wire signed [63:0] srdhm_nudge_d = srdhm_prod_q[63] ? NUDGE_NEG : NUDGE_POS;
            wire signed [63:0] srdhm_sum_d   = srdhm_prod_q + srdhm_nudge_d;
            reg  signed [32:0] srdhm_sum_q;          // (p + nudge) >>> 31, 33 bits
            reg                srdhm_rem_q;          // (p + nudge) mod 2^31 != 0
            reg                srdhm_sat_4_q;
            always @(posedge clk_i) begin
                srdhm_sum_q   <= srdhm_sum_d[63:31];
                srdhm_rem_q   <= srdhm_sum_d[30:0] != 31'd0;
                srdhm_sat_4_q <= srdhm_sat_q;
            end

            // ---- register stage 5: saturating_rounding_doubling_high_mul (divide, saturate)
            // C division by 2^31 truncates toward zero: floor (the arithmetic shift of
            // stage 4) plus one for a negative sum with a non-zero remainder. The quotient
            // fits int32 except in the saturation case (INT32_MIN * INT32_MIN), which
            // overrides it; its bit 32 is needed only as the sign.
            wire               srdhm_trunc_d = srdhm_sum_q[32] && srdhm_rem_q;
            wire signed [31:0] srdhm_div_d   = $signed(srdhm_sum_q[31:0]) + $signed({31'd0, srdhm_trunc_d});
            reg  signed [31:0] srdhm_q;
            always @(posedge clk_i) begin
                srdhm_q <= srdhm_sat_4_q ? INT32_MAX : srdhm_div_d;
            end
            assign mul_5 = srdhm_q;
        end else begin : g_single
            // ---- register stages 2-3b: total_shift = 31 - shift (1..62) travels with the data
            reg [5:0] total_shift_2_q, total_shift_3a_q, total_shift_3_q, total_shift_4_q;
            always @(posedge clk_i) begin
                total_shift_2_q  <= 6'd31 - $unsigned(shift_1_q);    // shift in -31..30
                total_shift_3a_q <= total_shift_2_q;
                total_shift_3_q  <= total_shift_3a_q;
            end

            // ---- register stage 4: single_rounding_multiply (+ 2^(total_shift - 1))
            // |x * m0| <= 2^62 and the rounding term <= 2^61: the sum fits 64 bits.
            wire signed [63:0] single_round_d = $signed(64'd1 << (total_shift_3_q - 6'd1));
            reg  signed [63:0] single_sum_q;
            always @(posedge clk_i) begin
                single_sum_q    <= srdhm_prod_q + single_round_d;
                total_shift_4_q <= total_shift_3_q;
            end

            // ---- register stage 5: single_rounding_multiply (>> total_shift)
            // arithmetic shift (floor): ties round toward +infinity; a result outside int32
            // keeps its low 32 bits (pymodel: wrap_int32, TFLite's static_cast<int32_t>).
            wire signed [63:0] single_shifted_d = single_sum_q >>> total_shift_4_q;
            reg  signed [31:0] single_round_q;
            always @(posedge clk_i) begin
                single_round_q <= single_shifted_d[31:0];
            end
            // the high bits of an out-of-int32 result are dropped (wraparound)
            wire unused_shifted_high = &{1'b0, single_shifted_d[63:32]};
            assign mul_5 = single_round_q;
        end
    endgenerate

    // ------------------------------------------ register stage 6: rounding_divide_by_pot
    // mask = 2^e - 1; remainder = x & mask; threshold = (mask >> 1) + (x < 0);
    // result = (x >>> e) + (remainder > threshold): nearest, ties away from zero.
    // (mask and the two possible thresholds come precomputed from stages 4 and 5.)
    wire [31:0]        rdbp_remainder_d = $unsigned(mul_5) & rdbp_mask_5_q;
    wire [31:0]        rdbp_threshold_d = mul_5[31] ? rdbp_thr_neg_5_q : rdbp_thr_pos_5_q;
    wire signed [31:0] rdbp_shifted_d   = mul_5 >>> exponent_5_q;
    wire               rdbp_round_d     = rdbp_remainder_d > rdbp_threshold_d;
    // (x >>> e) + round, as a select between x >>> e and (x >>> e) + 1 so that the
    // increment runs beside the comparison instead of after it
    wire signed [31:0] rdbp_shifted_inc_d = rdbp_shifted_d + 32'sd1;
    reg  signed [31:0] rounding_divide_by_pot_q;
    reg  signed [7:0]  zp_6_q, act_min_6_q, act_max_6_q;
    always @(posedge clk_i) begin
        rounding_divide_by_pot_q <= rdbp_round_d ? rdbp_shifted_inc_d : rdbp_shifted_d;
        zp_6_q                   <= zp_5_q;
        act_min_6_q              <= act_min_5_q;
        act_max_6_q              <= act_max_5_q;
    end

    // ------------------------------------------------- register stage 7: add_zero_point
    reg signed [31:0] add_zero_point_q;
    reg signed [7:0]  act_min_7_q, act_max_7_q;
    always @(posedge clk_i) begin
        // zp sign-extended to 32 bits; the 32-bit adder wraps mod 2^32
        add_zero_point_q <= rounding_divide_by_pot_q + $signed({{24{zp_6_q[7]}}, zp_6_q});
        act_min_7_q      <= act_min_6_q;
        act_max_7_q      <= act_max_6_q;
    end

    // ---------------------------------------------------------- register stage 8: clamp
    // pymodel: min(max(x, act_min), act_max). The two 32-bit comparisons run in parallel:
    // max(x, act_min) > act_max  <=>  x > act_max || act_min > act_max, so
    //   clamp = (x > act_max || act_min > act_max) ? act_max : (x < act_min ? act_min : x)
    // equals min(max(x, act_min), act_max) for every input (act_max when the bounds are
    // crossed, as in pymodel's formula). The result lies in [act_min, act_max] or equals
    // act_max, so it fits int8: clamp_o is its low 8 bits.
    wire signed [31:0] clamp_lo_d = {{24{act_min_7_q[7]}}, act_min_7_q};
    wire signed [31:0] clamp_hi_d = {{24{act_max_7_q[7]}}, act_max_7_q};
    wire               clamp_to_hi_d = (add_zero_point_q > clamp_hi_d) || (act_min_7_q > act_max_7_q);
    wire               clamp_to_lo_d = add_zero_point_q < clamp_lo_d;
    assign clamp_o = clamp_to_hi_d ? act_max_7_q
                   : clamp_to_lo_d ? act_min_7_q
                   : $signed(add_zero_point_q[7:0]);

endmodule

`default_nettype wire
