`default_nettype none
// window_engine -- depthwise convolution and pooling over LANES channels at a time:
// dedicated channel-parallel lanes beside the MAC array (docs/microarchitecture.md,
// "Window engine", gives the measured comparison that chose them).
//
//   MODE_DW  (0): depthwise conv, depth multiplier 1: acc[c] = sum_taps x[c] * w[tap][c]
//                 (out-of-image taps read as the input zero point, folded into the bias),
//                 then the per-channel requantize pipeline.
//   MODE_MAX (1): max pool over the in-image taps, then the requantize pipeline loaded
//                 with the identity (m0 = 2^30, shift = 1, bias 0, zp 0): only its clamp acts.
//   MODE_AVG (2): average pool, TFLite's rounded division of the in-image sum by the
//                 in-image tap count (window_divide), then the identity requantize (clamp).
//   MODE_SUM (3): window sum of the in-image taps -> requantize (building block of MEAN).
//
// One job = one input tile of LANES channels (a channel group): the host streams the
// tile's H x W pixels (row-major, one beat = LANES int8 channels), the engine stores them
// in the feature-map buffer, then walks every output pixel's kh x kw taps (stride,
// dilation, top / left padding from the configuration; a tap outside the image is
// padding) at one tap of all LANES channels per cycle, and streams the OH x OW output
// pixels (row-major, one beat = LANES int8 channels; out_last_o on the last pixel).
// Register stages (each named after its pymodel.ops.window_stages function; the stage
// table is docs/arithmetic.md section 9):
//   0  tap address generation (window_taps): iy = oy*SH - PAD_T + ky*DH, ix likewise
//   1  feature-map / weight buffer read (registered)
//   2  window_gather (window_lane)       3  window accumulate (window_lane)
//   4-10 rounding_divide_by_count (window_divide, MODE_AVG only)
//   then a RES_FIFO-entry result FIFO and requant_pipeline (its stages 0-8).
// Back-pressure never stalls the datapath: a window's first tap is issued only while the
// windows in flight plus those in the result FIFO are fewer than RES_FIFO (credits).
//
// Configuration (cfg_*; change only while idle, i.e. every output of the last job
// delivered): address 0 H, 1 W, 2 KH, 3 KW, 4 SH, 5 SW, 6 DH, 7 DW, 8 PAD_T, 9 PAD_L
// (16-bit two's complement: rows / columns of padding above / left of the tile; negative
// when the host cuts a tile whose first window starts below / right of the tile's origin),
// 10 OH, 11 OW, 12 PAD (input zero point, int8), 13 GROUP (requantize channel group:
// lane l uses channel GROUP*LANES + l), 14 MODE.
// Weights (w_*, MODE_DW): word ky*KW + kx holds w[ky][kx][c] of lane c in bits [8*c +: 8].
// synth-uses: requant_*.v
module window_engine #(
    parameter integer LANES      = 8,     // channels per job (parallel lanes), >= 1
    parameter integer H_MAX      = 32,    // input tile height, power of two >= 1
    parameter integer W_MAX      = 32,    // input tile width, power of two >= 1
    parameter integer TAPS_MAX   = 25,    // depthwise kernel taps KH*KW (weight words), >= 1
    parameter integer GROUPS_MAX = 8,     // channel groups of the requantize parameter memory, >= 1
    parameter integer RES_FIFO   = 4,     // result FIFO entries (windows in flight), >= 2
    parameter integer REQUANT    = 1,     // 1: requant_pipeline inside; 0: the caller's (rq_* ports, docs/top.md)
    // derived widths (do not override)
    parameter integer HB   = (H_MAX > 1) ? $clog2(H_MAX) : 1,                         // row address bits
    parameter integer WB   = (W_MAX > 1) ? $clog2(W_MAX) : 1,                         // column address bits
    parameter integer TW   = (TAPS_MAX > 1) ? $clog2(TAPS_MAX) : 1,                   // w_addr_i width
    parameter integer CH_W = (GROUPS_MAX * LANES > 1) ? $clog2(GROUPS_MAX * LANES) : 1, // prm_chan_i width
    parameter integer GW   = (GROUPS_MAX > 1) ? $clog2(GROUPS_MAX) : 1                // group index width
) (
    input  wire                 clk_i,          // clock, rising edge
    input  wire                 rst_i,          // synchronous reset, active high (drops the job in flight)
    // configuration registers
    input  wire                 cfg_we_i,       // write cfg_wdata_i to register cfg_addr_i
    input  wire [3:0]           cfg_addr_i,     // register address (see the header)
    input  wire [15:0]          cfg_wdata_i,    // register value (low bits used)
    // depthwise weight buffer write port
    input  wire                 w_we_i,         // write w_data_i to weight word w_addr_i
    input  wire [TW-1:0]        w_addr_i,       // tap ky*KW + kx, < TAPS_MAX
    input  wire [LANES*8-1:0]   w_data_i,       // LANES int8 weights, lane c in bits [8*c +: 8]
    // requantize parameter write port (passed to requant_pipeline)
    input  wire                 prm_we_i,       // write one channel's parameters
    input  wire [CH_W-1:0]      prm_chan_i,     // channel GROUP*LANES + lane
    input  wire signed [31:0]   prm_bias_i,     // int32 bias, input zero point folded in
    input  wire signed [31:0]   prm_m0_i,       // int32 multiplier m0
    input  wire signed [5:0]    prm_shift_i,    // shift, -31..30 (positive = left)
    input  wire signed [7:0]    prm_zp_i,       // int8 output zero point
    input  wire signed [7:0]    prm_act_min_i,  // int8 clamp lower bound (fused activation)
    input  wire signed [7:0]    prm_act_max_i,  // int8 clamp upper bound
    // input stream: the tile's pixels, row-major
    input  wire                 in_valid_i,     // beat valid
    output wire                 in_ready_o,     // beat accepted (high while a job is being loaded)
    input  wire [LANES*8-1:0]   in_data_i,      // x[y][x][c] (int8) of lane c in bits [8*c +: 8]
    // output stream: the output pixels, row-major
    output wire                 out_valid_o,    // beat valid
    input  wire                 out_ready_i,    // beat accepted
    output wire [LANES*8-1:0]   out_data_o,     // y[oy][ox][c] (int8) of lane c in bits [8*c +: 8]
    output wire                 out_last_o,     // last output pixel of the job
    // REQUANT = 0: the results before requantization, for the caller's requant_pipeline
    // (prm_* and out_* are then unused / zero); REQUANT = 1: rq_ready_i unused, rq_* zero
    output wire                 rq_valid_o,     // beat valid
    input  wire                 rq_ready_i,     // beat accepted (the pipeline's in_ready_o)
    output wire [GW-1:0]        rq_tile_o,      // requantize tile: GROUP (channels GROUP*LANES + lane)
    output wire [32*LANES-1:0]  rq_data_o,      // lane l int32 result in bits [32*l +: 32]
    output wire                 rq_last_o       // last output pixel of the job (the pipeline's user bit)
);
    generate
        if (LANES < 1 || H_MAX < 1 || W_MAX < 1 || (H_MAX & (H_MAX - 1)) != 0
            || (W_MAX & (W_MAX - 1)) != 0 || H_MAX > 65536 || W_MAX > 65536
            || TAPS_MAX < 1 || GROUPS_MAX < 1 || RES_FIFO < 2 || RES_FIFO > 255
            || (1 << HB) != H_MAX && H_MAX > 1 || (1 << WB) != W_MAX && W_MAX > 1
            || (1 << TW) < TAPS_MAX || (1 << GW) < GROUPS_MAX
            || (REQUANT != 0 && REQUANT != 1)
            || (1 << CH_W) < GROUPS_MAX * LANES) begin : g_bad_params
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "window_engine: LANES = %0d, H_MAX = %0d, W_MAX = %0d, TAPS_MAX = %0d, GROUPS_MAX = %0d, RES_FIFO = %0d, REQUANT = %0d: need all >= 1, H_MAX and W_MAX powers of two <= 65536, 2 <= RES_FIFO <= 255, REQUANT 0 or 1, derived widths at their defaults",
                           LANES, H_MAX, W_MAX, TAPS_MAX, GROUPS_MAX, RES_FIFO, REQUANT);
`else
            $error("window_engine: LANES = %0d, H_MAX = %0d, W_MAX = %0d, TAPS_MAX = %0d, GROUPS_MAX = %0d, RES_FIFO = %0d, REQUANT = %0d: need all >= 1, H_MAX and W_MAX powers of two <= 65536, 2 <= RES_FIFO <= 255, REQUANT 0 or 1, derived widths at their defaults",
                   LANES, H_MAX, W_MAX, TAPS_MAX, GROUPS_MAX, RES_FIFO, REQUANT);
`endif
        end
    endgenerate

    localparam [1:0] MODE_DW  = 2'd0;
    localparam [1:0] MODE_AVG = 2'd2;
    localparam integer FQ_W = $clog2(RES_FIFO + 1);   // windows-in-flight counter width

    // ---------------------------------------------------------------- configuration
    reg [15:0]        h_q, w_q, kh_q, kw_q, oh_q, ow_q;
    reg [7:0]         sh_q, sw_q, dh_q, dw_q;
    reg signed [15:0] pad_t_q, pad_l_q;    // two's complement: negative = tile starts inside the padding
    reg signed [7:0]  pad_q;
    reg [GW-1:0]      group_q;
    reg [1:0]         mode_q;
    always @(posedge clk_i) begin
        if (rst_i) begin
            h_q <= 16'd1; w_q <= 16'd1; kh_q <= 16'd1; kw_q <= 16'd1; oh_q <= 16'd1; ow_q <= 16'd1;
            sh_q <= 8'd1; sw_q <= 8'd1; dh_q <= 8'd1; dw_q <= 8'd1; pad_t_q <= 16'sd0; pad_l_q <= 16'sd0;
            pad_q <= 8'sd0; group_q <= {GW{1'b0}}; mode_q <= MODE_DW;
        end else if (cfg_we_i) begin
            case (cfg_addr_i)
                4'd0:  h_q     <= cfg_wdata_i;
                4'd1:  w_q     <= cfg_wdata_i;
                4'd2:  kh_q    <= cfg_wdata_i;
                4'd3:  kw_q    <= cfg_wdata_i;
                4'd4:  sh_q    <= cfg_wdata_i[7:0];
                4'd5:  sw_q    <= cfg_wdata_i[7:0];
                4'd6:  dh_q    <= cfg_wdata_i[7:0];
                4'd7:  dw_q    <= cfg_wdata_i[7:0];
                4'd8:  pad_t_q <= $signed(cfg_wdata_i);
                4'd9:  pad_l_q <= $signed(cfg_wdata_i);
                4'd10: oh_q    <= cfg_wdata_i;
                4'd11: ow_q    <= cfg_wdata_i;
                4'd12: pad_q   <= $signed(cfg_wdata_i[7:0]);
                4'd13: group_q <= cfg_wdata_i[GW-1:0];
                4'd14: mode_q  <= cfg_wdata_i[1:0];
                default: ;
            endcase
        end
    end

    // ---------------------------------------------------------------- buffers
    reg [LANES*8-1:0] fm_mem [0:H_MAX*W_MAX-1];   // input tile, word {y, x}
    reg [LANES*8-1:0] w_mem  [0:TAPS_MAX-1];      // depthwise weights, word ky*KW + kx
    always @(posedge clk_i) begin
        if (w_we_i) w_mem[w_addr_i] <= w_data_i;
    end

    // ---------------------------------------------------------------- load side
    reg        load_q;                  // accepting the job's input pixels
    reg [15:0] fy_q, fx_q;              // pixel being written
    assign in_ready_o = load_q;
    wire in_fire  = in_valid_i && load_q;
    wire fill_eol = (fx_q == w_q - 16'd1);
    wire fill_end = fill_eol && (fy_q == h_q - 16'd1);
    always @(posedge clk_i) begin
        if (in_fire) fm_mem[{fy_q[HB-1:0], fx_q[WB-1:0]}] <= in_data_i;
    end

    // ---------------------------------------------------------------- stage 0: window_taps
    // Output pixel (oy, ox), tap (ky, kx); ybase = oy*SH - PAD_T, ty = ky*DH (likewise x),
    // kept as running sums so that no multiplier is needed.
    reg                compute_q;          // walking the taps of the loaded job
    reg [15:0]         oy_q, ox_q, ky_q, kx_q;
    reg signed [17:0]  ybase_q, xbase_q;
    reg [17:0]         ty_q, tx_q;
    reg [TW-1:0]       t_q;                // weight word ky*KW + kx (MODE_DW)
    reg [FQ_W-1:0]     inflight_q;         // windows started and not yet out of the result FIFO

    wire signed [17:0] iy_d = ybase_q + $signed(ty_q);
    wire signed [17:0] ix_d = xbase_q + $signed(tx_q);
    wire inside_d = (iy_d >= 18'sd0) && (iy_d < $signed({2'b00, h_q}))
                 && (ix_d >= 18'sd0) && (ix_d < $signed({2'b00, w_q}));
    wire tap_first = (ky_q == 16'd0) && (kx_q == 16'd0);
    wire row_end   = (kx_q == kw_q - 16'd1);
    wire tap_last  = row_end && (ky_q == kh_q - 16'd1);
    wire pix_eol   = (ox_q == ow_q - 16'd1);
    wire pix_last  = pix_eol && (oy_q == oh_q - 16'd1);
    wire rf_pop;                           // a result leaves the FIFO for the requantizer
    wire credit    = ({{(32-FQ_W){1'b0}}, inflight_q} < RES_FIFO);
    wire issue     = compute_q && (!tap_first || credit);
    wire [HB+WB-1:0] fm_raddr = {iy_d[HB-1:0], ix_d[WB-1:0]};
    // Only the low address bits are used; the range checks keep the rest in range.
    wire unused_addr = &{1'b0, iy_d[17:HB], ix_d[17:WB]};

    always @(posedge clk_i) begin
        if (rst_i) begin
            load_q     <= 1'b1;
            fy_q       <= 16'd0;
            fx_q       <= 16'd0;
            compute_q  <= 1'b0;
            oy_q <= 16'd0; ox_q <= 16'd0; ky_q <= 16'd0; kx_q <= 16'd0;
            ybase_q <= 18'sd0; xbase_q <= 18'sd0; ty_q <= 18'd0; tx_q <= 18'd0;
            t_q        <= {TW{1'b0}};
            inflight_q <= {FQ_W{1'b0}};
        end else begin
            inflight_q <= inflight_q + {{(FQ_W-1){1'b0}}, issue && tap_first}
                                     - {{(FQ_W-1){1'b0}}, rf_pop};
            if (in_fire) begin
                fx_q <= fill_eol ? 16'd0 : fx_q + 16'd1;
                if (fill_eol) fy_q <= fill_end ? 16'd0 : fy_q + 16'd1;
                if (fill_end) begin
                    // start the walk over the output pixels
                    load_q    <= 1'b0;
                    compute_q <= 1'b1;
                    oy_q <= 16'd0; ox_q <= 16'd0; ky_q <= 16'd0; kx_q <= 16'd0;
                    ybase_q <= -{{2{pad_t_q[15]}}, pad_t_q};
                    xbase_q <= -{{2{pad_l_q[15]}}, pad_l_q};
                    ty_q <= 18'd0; tx_q <= 18'd0; t_q <= {TW{1'b0}};
                end
            end
            if (issue) begin
                if (!row_end) begin
                    kx_q <= kx_q + 16'd1;
                    tx_q <= tx_q + {10'd0, dw_q};
                    if (mode_q == MODE_DW) t_q <= t_q + 1'b1;
                end else if (!tap_last) begin
                    kx_q <= 16'd0;
                    tx_q <= 18'd0;
                    ky_q <= ky_q + 16'd1;
                    ty_q <= ty_q + {10'd0, dh_q};
                    if (mode_q == MODE_DW) t_q <= t_q + 1'b1;
                end else begin
                    kx_q <= 16'd0; tx_q <= 18'd0; ky_q <= 16'd0; ty_q <= 18'd0;
                    t_q  <= {TW{1'b0}};
                    if (!pix_eol) begin
                        ox_q    <= ox_q + 16'd1;
                        xbase_q <= xbase_q + $signed({10'd0, sw_q});
                    end else begin
                        ox_q    <= 16'd0;
                        xbase_q <= -{{2{pad_l_q[15]}}, pad_l_q};
                        oy_q    <= oy_q + 16'd1;
                        ybase_q <= ybase_q + $signed({10'd0, sh_q});
                    end
                    if (pix_last) begin
                        // every tap issued: the buffer may take the next job
                        compute_q <= 1'b0;
                        load_q    <= 1'b1;
                    end
                end
            end
        end
    end

    // ---------------------------------------------------------------- stage 1: buffer read
    reg [LANES*8-1:0] fm_rdata_q, w_rdata_q;
    reg               v1_q, inside_1_q, first_1_q, last_1_q, lastpix_1_q;
    always @(posedge clk_i) begin
        fm_rdata_q  <= fm_mem[fm_raddr];
        w_rdata_q   <= w_mem[t_q];
        inside_1_q  <= inside_d;
        first_1_q   <= tap_first;
        last_1_q    <= tap_last;
        lastpix_1_q <= pix_last;
    end

    // ---------------------------------------------------------------- stages 2-3: lanes
    reg         v2_q, inside_2_q, first_2_q, last_2_q, lastpix_2_q;
    reg         v3_q, lastpix_3_q;
    reg  [15:0] count_3_q;                 // in-image taps of the window (window_count)
    always @(posedge clk_i) begin
        inside_2_q  <= inside_1_q;
        first_2_q   <= first_1_q;
        last_2_q    <= last_1_q;
        lastpix_2_q <= lastpix_1_q;
        count_3_q   <= (first_2_q ? 16'd0 : count_3_q) + {15'd0, inside_2_q};
        lastpix_3_q <= lastpix_2_q;
    end

    wire avg = (mode_q == MODE_AVG);
    wire [32*LANES-1:0] acc_all;           // stage 3: window_acc_q of every lane
    wire [32*LANES-1:0] quo_all;           // stage 10: rounding_divide_by_count_q of every lane
    genvar l;
    generate
        for (l = 0; l < LANES; l = l + 1) begin : g_lane
            window_lane u_lane (
                .clk_i   (clk_i),
                .mode_i  (mode_q),
                .pad_i   (pad_q),
                .fm_i    (fm_rdata_q[8*l +: 8]),
                .inside_i(inside_1_q),
                .w_i     (w_rdata_q[8*l +: 8]),
                .first_i (first_2_q),
                .acc_o   (acc_all[32*l +: 32])
            );
            // operand isolation: outside MODE_AVG the divider's inputs hold still
            window_divide u_divide (
                .clk_i  (clk_i),
                .sum_i  (avg ? acc_all[32*l +: 32] : 32'sd0),
                .count_i(avg ? count_3_q : 16'd1),
                .quo_o  (quo_all[32*l +: 32])
            );
        end
    endgenerate

    // --------------------------------------------------------------- stages 4-10: valids
    reg [6:0] vdiv_q;                      // valid of divider stages 4..10
    reg [6:0] lastpix_div_q;
    always @(posedge clk_i) begin
        lastpix_div_q <= {lastpix_div_q[5:0], lastpix_3_q};
    end
    always @(posedge clk_i) begin
        if (rst_i) begin
            v1_q <= 1'b0; v2_q <= 1'b0; v3_q <= 1'b0; vdiv_q <= 7'd0;
        end else begin
            v1_q   <= issue;
            v2_q   <= v1_q;
            v3_q   <= v2_q && last_2_q;    // a window's last tap: its result is in stage 3
            vdiv_q <= {vdiv_q[5:0], v3_q};
        end
    end

    // ---------------------------------------------------------------- result FIFO
    wire rf_push = avg ? vdiv_q[6] : v3_q;
    wire [32*LANES:0] rf_wdata = avg ? {lastpix_div_q[6], quo_all} : {lastpix_3_q, acc_all};
    wire              rf_valid;
    wire [32*LANES:0] rf_rdata;
    wire              rq_ready;
    requant_out_fifo #(.WIDTH(32 * LANES + 1), .DEPTH(RES_FIFO)) u_res_fifo (
        .clk_i  (clk_i),
        .rst_i  (rst_i),
        .push_i (rf_push),
        .wdata_i(rf_wdata),
        .valid_o(rf_valid),
        .ready_i(rq_ready),
        .rdata_o(rf_rdata)
    );
    assign rf_pop = rf_valid && rq_ready;

    // ---------------------------------------------------------------- requantize
    generate
        if (REQUANT == 1) begin : g_requant
            requant_pipeline #(.LANES(LANES), .CHANNELS(GROUPS_MAX * LANES), .USER_W(1)) u_requant (
                .clk_i         (clk_i),
                .rst_i         (rst_i),
                .prm_we_i      (prm_we_i),
                .prm_chan_i    (prm_chan_i),
                .prm_bias_i    (prm_bias_i),
                .prm_m0_i      (prm_m0_i),
                .prm_shift_i   (prm_shift_i),
                .prm_zp_i      (prm_zp_i),
                .prm_act_min_i (prm_act_min_i),
                .prm_act_max_i (prm_act_max_i),
                .in_valid_i    (rf_valid),
                .in_ready_o    (rq_ready),
                .in_tile_i     (group_q),
                .in_data_i     (rf_rdata[32*LANES-1:0]),
                .in_user_i     (rf_rdata[32*LANES]),
                .out_valid_o   (out_valid_o),
                .out_ready_i   (out_ready_i),
                .out_data_o    (out_data_o),
                .out_user_o    (out_last_o)
            );
            assign rq_valid_o = 1'b0;
            assign rq_tile_o  = {GW{1'b0}};
            assign rq_data_o  = {(32*LANES){1'b0}};
            assign rq_last_o  = 1'b0;
            wire unused_rq = &{1'b0, rq_ready_i};
        end else begin : g_ext_requant
            // the caller requantizes (qmac_top shares one pipeline between the units)
            assign rq_valid_o  = rf_valid;
            assign rq_ready    = rq_ready_i;
            assign rq_tile_o   = group_q;
            assign rq_data_o   = rf_rdata[32*LANES-1:0];
            assign rq_last_o   = rf_rdata[32*LANES];
            assign out_valid_o = 1'b0;
            assign out_data_o  = {(LANES*8){1'b0}};
            assign out_last_o  = 1'b0;
            wire unused_prm = &{1'b0, prm_we_i, prm_chan_i, prm_bias_i, prm_m0_i, prm_shift_i,
                                prm_zp_i, prm_act_min_i, prm_act_max_i, out_ready_i};
        end
    endgenerate

`ifndef SYNTHESIS
    // ---------------------------------------------------------------- simulation checks
    // A configuration outside the documented ranges is the host's error; say so loudly.
    always @(posedge clk_i) begin
        if (!rst_i && in_fire && fy_q == 16'd0 && fx_q == 16'd0) begin
            if (h_q == 16'd0 || {16'd0, h_q} > H_MAX || w_q == 16'd0 || {16'd0, w_q} > W_MAX)
                $error("window_engine: H x W = %0d x %0d is outside 1..H_MAX = %0d x 1..W_MAX = %0d",
                       h_q, w_q, H_MAX, W_MAX);
            if (kh_q == 16'd0 || kw_q == 16'd0 || oh_q == 16'd0 || ow_q == 16'd0)
                $error("window_engine: KH, KW, OH, OW = %0d, %0d, %0d, %0d must be >= 1",
                       kh_q, kw_q, oh_q, ow_q);
            if (sh_q == 8'd0 || sw_q == 8'd0 || dh_q == 8'd0 || dw_q == 8'd0)
                $error("window_engine: strides %0d, %0d and dilations %0d, %0d must be >= 1",
                       sh_q, sw_q, dh_q, dw_q);
            if (mode_q == MODE_DW && {16'd0, kh_q} * {16'd0, kw_q} > TAPS_MAX)
                $error("window_engine: KH x KW = %0d x %0d taps exceed TAPS_MAX = %0d",
                       kh_q, kw_q, TAPS_MAX);
            if ({{(32-GW){1'b0}}, group_q} >= GROUPS_MAX)
                $error("window_engine: GROUP = %0d is not below GROUPS_MAX = %0d", group_q, GROUPS_MAX);
        end
        if (!rst_i && avg && v3_q && count_3_q == 16'd0)
            $error("window_engine: an average-pool window has no tap inside the image");
        if (!rst_i && cfg_we_i && cfg_addr_i == 4'd15)
            $error("window_engine: cfg_addr_i = 15 is not a register");
    end
`endif
endmodule
`default_nettype wire
