// window_lane: one channel lane of the window engine (pure datapath, no control state).
//
// Register stages 2 and 3 of rtl/window_engine.v for one channel: the tap value after
// padding, then the accumulation of the window, each named after its pymodel function
// (pymodel.ops.window_stages; docs/arithmetic.md section 9):
//
//   reg stage  register           pymodel.ops.window_stages function
//   1          (window_engine:    -- feature-map and weight buffer reads (registered)
//               fm / weight read)
//   2          window_gather_q    window_gather: inside ? x[iy, ix, c] : pad value
//                                 (input zero point for depthwise, -128 for max, 0 for sums)
//   3          dw_prod_q,         depthwise_accumulate  (MODE_DW: dw_prod_q = tap * w,
//              window_acc_q                             8 x 8 -> 16; window_acc_q = the
//                                                       earlier taps' products; the stage's
//                                                       value acc_o = window_acc_q +
//                                                       dw_prod_q, int32 wraps)
//                                 window_max            (MODE_MAX: max(acc, tap))
//                                 window_sum            (MODE_AVG, MODE_SUM: acc + tap)
//
// The first tap of a window starts a new accumulation (acc := 0 for the sums, -128 for
// max). Depthwise adds each product one cycle after registering it, so the multiplier
// and the accumulator's adder are in different cycles (ECP5 >= 100 MHz,
// docs/synthesis.md); the last product's add is combinational on acc_o, into the next
// stage's registers. The lane has no valid bits (window_engine keeps them); its
// registers load every cycle and are not reset (datapath only).
`default_nettype none

module window_lane (
    input  wire               clk_i,        // clock, rising edge
    input  wire [1:0]         mode_i,       // 0 depthwise, 1 max, 2 average, 3 sum (constant per job)
    input  wire signed [7:0]  pad_i,        // stage 1: value of an out-of-image tap in MODE_DW (input zero point)
    input  wire signed [7:0]  fm_i,         // stage 1: the tap's feature-map byte (buffer read data)
    input  wire               inside_i,     // stage 1: the tap lies inside the image
    input  wire signed [7:0]  w_i,          // stage 1: the tap's int8 weight (MODE_DW)
    input  wire               first_i,      // stage 2: the tap in window_gather_q is a window's first
    output wire signed [31:0] acc_o         // stage 3: window_acc_q
);
    localparam [1:0] MODE_DW  = 2'd0;
    localparam [1:0] MODE_MAX = 2'd1;

    // ------------------------------------------------- register stage 2: window_gather
    // Out-of-image taps read as the pad value: the input zero point for depthwise (the
    // folded bias cancels it), -128 for max (never above an in-image tap), 0 for sums.
    wire signed [7:0] pad_d = (mode_i == MODE_DW)  ? pad_i
                            : (mode_i == MODE_MAX) ? -8'sd128
                            : 8'sd0;
    reg  signed [7:0] window_gather_q;
    reg  signed [7:0] w_2_q;
    always @(posedge clk_i) begin
        window_gather_q <= inside_i ? fm_i : pad_d;
        w_2_q           <= w_i;
    end

    // ------------------------------------------ register stage 3: window accumulation
    reg  signed [31:0] window_acc_q;
    wire signed [31:0] tap_d  = {{24{window_gather_q[7]}}, window_gather_q};
    wire signed [15:0] prod_d = window_gather_q * w_2_q;                  // 8 x 8 -> 16 signed
    reg  signed [15:0] dw_prod_q;
    wire signed [31:0] prev_d = first_i ? 32'sd0 : window_acc_q;        // the sums' start
    wire signed [31:0] dw_acc_d = window_acc_q + {{16{dw_prod_q[15]}}, dw_prod_q}; // wraps mod 2^32
    // the earlier taps' products: 0 when the tap now in window_gather_q starts a window
    wire signed [31:0] mac_d  = first_i ? 32'sd0 : dw_acc_d;
    // max: every value is an int8 (the taps, -128 for padding and as the start), so the
    // running maximum is compared and kept on 8 bits and sign-extended (timing: an 8-bit
    // compare instead of 32, docs/synthesis.md); window_acc_q holds a MODE_MAX value
    // sign-extended, and a job's first tap starts a window (first_i)
    wire signed [7:0]  prev_max_d = first_i ? -8'sd128 : window_acc_q[7:0];
    wire signed [7:0]  max8_d = (window_gather_q > prev_max_d) ? window_gather_q : prev_max_d;
    wire signed [31:0] max_d  = {{24{max8_d[7]}}, max8_d};
    wire signed [31:0] sum_d  = prev_d + tap_d;
    always @(posedge clk_i) begin
        case (mode_i)
            MODE_DW:  window_acc_q <= mac_d;       // the sum before the tap in dw_prod_q
            MODE_MAX: window_acc_q <= max_d;
            default:  window_acc_q <= sum_d;
        endcase
    end
    always @(posedge clk_i) begin
        dw_prod_q <= prod_d;
    end
    assign acc_o = (mode_i == MODE_DW) ? dw_acc_d : window_acc_q;

endmodule

`default_nettype wire
