// window_divide: TFLite's rounded division of a window sum by its tap count, one lane
// (pure datapath, no control state).
//
// Implements pymodel.ops.window_stages.rounding_divide_by_count: for a sum s of n int8
// taps (n >= 1), q = (s > 0 ? s + n/2 : s - n/2) / n with C division (truncation toward
// zero), i.e. s / n rounded to nearest, ties away from zero -- TFLite's average pool.
// |s| <= 128 n, so |q| <= 128 and the numerator's magnitude |s| + n/2 < 2^24 (n < 2^16).
//
//   reg stage  register                   operation
//   4          rdc_sum_q, count_4_q       the operands s and n, registered (no operation:
//                                         window_lane's depthwise sum is combinational
//                                         on sum_i, so nothing else follows it here)
//   5          rdc_num_q, rdc_neg_q       sign and magnitude of the numerator: |s| + n/2
//   6          rdc_rem_6_q, rdc_quo_6_q   restoring division, quotient bits 7..6
//   7          rdc_rem_7_q, rdc_quo_7_q   restoring division, quotient bits 5..4
//   8          rdc_rem_8_q, rdc_quo_8_q   restoring division, quotient bits 3..2
//   9          rdc_quo_9_q                restoring division, quotient bits 1..0
//   10         rounding_divide_by_count_q quotient with the numerator's sign
//
// Truncating division of a signed numerator = the magnitude's floor division with the
// sign put back, which is what stages 5-10 compute (a restoring divider, 2 bits a stage:
// two 24-bit compare-and-subtract steps in series per cycle keep the unit >= 100 MHz on
// an ECP5, docs/synthesis.md; four a stage did not).
// Registers load every cycle and are not reset (datapath only).
`default_nettype none

module window_divide (
    input  wire               clk_i,     // clock, rising edge
    input  wire signed [31:0] sum_i,     // stage 3: window sum s, |s| <= 128 n
    input  wire [15:0]        count_i,   // stage 3: in-image taps n, 1 .. 65535
    output wire signed [31:0] quo_o      // stage 10: rounding_divide_by_count_q
);
    // ------------------------------------------------ register stage 4: the operands
    reg  signed [31:0] rdc_sum_q;
    reg  [15:0]        count_4_q;
    always @(posedge clk_i) begin
        rdc_sum_q <= sum_i;
        count_4_q <= count_i;
    end

    // ------------------------------------------ register stage 5: numerator magnitude
    // s > 0: s + n/2; otherwise s - n/2 = -(|s| + n/2). Only the low 24 bits of |s| can
    // be non-zero (|s| <= 128 * 65535 < 2^23).
    wire               neg_d = !(rdc_sum_q > 32'sd0);
    wire [31:0]        mag_d = neg_d ? (32'd0 - $unsigned(rdc_sum_q)) : $unsigned(rdc_sum_q);
    wire unused_mag = &{1'b0, mag_d[31:24]};
    reg  [23:0]        rdc_num_q;
    reg                rdc_neg_q;
    reg  [15:0]        count_5_q;
    always @(posedge clk_i) begin
        rdc_num_q <= mag_d[23:0] + {9'd0, count_4_q[15:1]};
        rdc_neg_q <= neg_d;
        count_5_q <= count_4_q;
    end

    // ------------------------------------------------ register stages 6 to 9: division
    // r >= n * 2^b ? (r - n * 2^b, quotient bit b set) : (r, bit clear), b = 7 .. 0.
    function [25:0] div_step2;      // {remainder[23:0], quotient bits[1:0]}
        input [23:0] rem;
        input [15:0] n;
        input integer top;                    // highest quotient bit of this stage
        reg   [23:0] r;
        reg   [1:0]  q;
        reg   [24:0] d;
        integer b;
        begin
            r = rem;
            q = 2'd0;
            for (b = 1; b >= 0; b = b - 1) begin
                d = {9'd0, n} << (top - 1 + b);
                if ({1'b0, r} >= d) begin
                    r = r - d[23:0];
                    q[b] = 1'b1;
                end
            end
            div_step2 = {r, q};
        end
    endfunction

    // stage 6: quotient bits 7..6
    wire [25:0] step6_d = div_step2(rdc_num_q, count_5_q, 7);
    reg  [23:0] rdc_rem_6_q;
    reg  [1:0]  rdc_quo_6_q;
    reg         rdc_neg_6_q;
    reg  [15:0] count_6_q;
    always @(posedge clk_i) begin
        rdc_rem_6_q <= step6_d[25:2];
        rdc_quo_6_q <= step6_d[1:0];
        rdc_neg_6_q <= rdc_neg_q;
        count_6_q   <= count_5_q;
    end

    // stage 7: quotient bits 5..4
    wire [25:0] step7_d = div_step2(rdc_rem_6_q, count_6_q, 5);
    reg  [23:0] rdc_rem_7_q;
    reg  [3:0]  rdc_quo_7_q;
    reg         rdc_neg_7_q;
    reg  [15:0] count_7_q;
    always @(posedge clk_i) begin
        rdc_rem_7_q <= step7_d[25:2];
        rdc_quo_7_q <= {rdc_quo_6_q, step7_d[1:0]};
        rdc_neg_7_q <= rdc_neg_6_q;
        count_7_q   <= count_6_q;
    end

    // stage 8: quotient bits 3..2
    wire [25:0] step8_d = div_step2(rdc_rem_7_q, count_7_q, 3);
    reg  [23:0] rdc_rem_8_q;
    reg  [5:0]  rdc_quo_8_q;
    reg         rdc_neg_8_q;
    reg  [15:0] count_8_q;
    always @(posedge clk_i) begin
        rdc_rem_8_q <= step8_d[25:2];
        rdc_quo_8_q <= {rdc_quo_7_q, step8_d[1:0]};
        rdc_neg_8_q <= rdc_neg_7_q;
        count_8_q   <= count_7_q;
    end

    // stage 9: quotient bits 1..0
    wire [25:0] step9_d = div_step2(rdc_rem_8_q, count_8_q, 1);
    reg  [7:0]  rdc_quo_9_q;
    reg         rdc_neg_9_q;
    always @(posedge clk_i) begin
        rdc_quo_9_q <= {rdc_quo_8_q, step9_d[1:0]};
        rdc_neg_9_q <= rdc_neg_8_q;
    end
    wire unused_rem = &{1'b0, step9_d[25:2]};   // the final remainder is not needed

    // ----------------------------------------- register stage 10: put the sign back
    reg signed [31:0] rounding_divide_by_count_q;
    wire signed [31:0] quo_d = $signed({24'd0, rdc_quo_9_q});
    always @(posedge clk_i) begin
        rounding_divide_by_count_q <= rdc_neg_9_q ? -quo_d : quo_d;
    end
    assign quo_o = rounding_divide_by_count_q;

endmodule

`default_nettype wire
