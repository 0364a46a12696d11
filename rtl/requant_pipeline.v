// requant_pipeline: per-channel int32 -> int8 requantization, LANES results per cycle.
//
// Bit-exact with pymodel.arithmetic.fixedpoint.requantize (docs/arithmetic.md section 5;
// the stage diagram is 5.4, the interfaces are described in docs/requant.md), with
// rounding = "double" (gemmlowp, SINGLE_ROUNDING = 0) or "single" (TFLITE_SINGLE_ROUNDING,
// SINGLE_ROUNDING = 1; m0 must then be >= 0).
//
// Parameter memory: CHANNELS entries of {bias, m0, shift, zp, act_min, act_max}, written
// one channel per cycle through the prm_* port. Channel c lives in bank c % LANES at
// address c / LANES; each lane reads its own bank.
//
// Input stream: one beat = LANES int32 accumulators (lane l in in_data_i[32*l +: 32]) and
// a tile index t: lane l uses the parameters of channel t * LANES + l, i.e. the beat is
// the row of output channels t*LANES .. t*LANES + LANES-1 (a MAC-array result row). The
// tile may change on every beat. in_user_i travels with the beat untouched.
//
// Output stream: LANES int8 results (lane l in out_data_o[8*l +: 8]) in input order.
//
// Latency: LATENCY = 10 register stages. A beat accepted at rising edge t is presented on
// out_* after edge t + 9 and can transfer at edge t + 10 at the earliest.
//
// Back-pressure: the arithmetic pipeline never stalls. Its results go into a
// LATENCY + 1 entry output FIFO, and a beat is admitted only while the beats in flight
// plus the beats in the FIFO are fewer than LATENCY + 1 (a credit counter), so nothing is
// ever lost or duplicated. in_ready_o is a register; no combinational path joins the
// input and output streams. With out_ready_i held high, one beat per cycle flows.
//
// Parameter writes: a write at rising edge t is used by beats accepted at edge t + 1 or
// later; beats accepted at edge t or earlier use the old contents (each beat reads all
// its parameters once, in stage 0, and carries them down the pipeline).
`default_nettype none

module requant_pipeline #(
    parameter integer LANES    = 8,     // parallel lanes (MAC-array columns), >= 1
    parameter integer CHANNELS = 64,    // parameter-memory depth in channels, multiple of LANES
    parameter integer USER_W   = 1,     // width of the in_user_i / out_user_o sideband, >= 1
    parameter integer SINGLE_ROUNDING = 0,  // 0: gemmlowp double rounding; 1: TFLITE_SINGLE_ROUNDING
    // derived widths (do not override)
    parameter integer TILES    = (LANES > 0) ? CHANNELS / LANES : 1,     // tiles of LANES channels
    parameter integer TILE_W   = (TILES > 1) ? $clog2(TILES) : 1,        // width of in_tile_i
    parameter integer CHAN_W   = (CHANNELS > 1) ? $clog2(CHANNELS) : 1   // width of prm_chan_i
) (
    input  wire                    clk_i,          // clock, rising edge
    input  wire                    rst_i,          // synchronous active-high reset (control state)
    // parameter write port (one channel per cycle)
    input  wire                    prm_we_i,       // write the fields below to channel prm_chan_i
    input  wire [CHAN_W-1:0]       prm_chan_i,     // output channel, < CHANNELS
    input  wire signed [31:0]      prm_bias_i,     // int32 bias (input zero point folded in)
    input  wire signed [31:0]      prm_m0_i,       // int32 multiplier m0 (every bit pattern accepted)
    input  wire signed [5:0]       prm_shift_i,    // shift, -31..30 (positive = left shift)
    input  wire signed [7:0]       prm_zp_i,       // int8 output zero point
    input  wire signed [7:0]       prm_act_min_i,  // int8 clamp lower bound
    input  wire signed [7:0]       prm_act_max_i,  // int8 clamp upper bound, >= prm_act_min_i
    // input stream: LANES int32 accumulators of one tile of output channels
    input  wire                    in_valid_i,     // beat valid
    output wire                    in_ready_o,     // pipeline can take a beat
    input  wire [TILE_W-1:0]       in_tile_i,      // tile t < TILES: lane l uses channel t*LANES+l
    input  wire [32*LANES-1:0]     in_data_i,      // lane l accumulator in bits [32*l +: 32]
    input  wire [USER_W-1:0]       in_user_i,      // sideband carried to out_user_o
    // output stream: LANES int8 results
    output wire                    out_valid_o,    // result beat valid
    input  wire                    out_ready_i,    // consumer takes the beat
    output wire [8*LANES-1:0]      out_data_o,     // lane l int8 result in bits [8*l +: 8]; 0 when !out_valid_o
    output wire [USER_W-1:0]       out_user_o      // the beat's in_user_i; 0 when !out_valid_o
);
    // ------------------------------------------------------------ parameter checks
    generate
        if (LANES < 1 || CHANNELS < LANES || (CHANNELS % LANES) != 0 || USER_W < 1
            || TILES != CHANNELS / LANES || (1 << TILE_W) < TILES
            || (1 << CHAN_W) < CHANNELS
            || (SINGLE_ROUNDING != 0 && SINGLE_ROUNDING != 1)) begin : g_bad_params
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "requant_pipeline: LANES = %0d, CHANNELS = %0d, USER_W = %0d, SINGLE_ROUNDING = %0d: need LANES >= 1, CHANNELS a non-zero multiple of LANES, USER_W >= 1, SINGLE_ROUNDING 0 or 1 (and TILES/TILE_W/CHAN_W left at their defaults)",
                           LANES, CHANNELS, USER_W, SINGLE_ROUNDING);
`else
            $error("requant_pipeline: LANES = %0d, CHANNELS = %0d, USER_W = %0d, SINGLE_ROUNDING = %0d: need LANES >= 1, CHANNELS a non-zero multiple of LANES, USER_W >= 1, SINGLE_ROUNDING 0 or 1 (and TILES/TILE_W/CHAN_W left at their defaults)",
                   LANES, CHANNELS, USER_W, SINGLE_ROUNDING);
`endif
        end
    endgenerate

    localparam integer LATENCY    = 10;           // register stages, input accept -> output (3 and 3b: the SRDHM multiply)
    localparam integer FIFO_DEPTH = LATENCY + 1;  // enough for one beat per cycle
    localparam integer OCC_W      = $clog2(FIFO_DEPTH + 1);
    localparam integer PARAM_W    = 32 + 32 + 6 + 8 + 8 + 8;  // bias m0 shift zp min max
    localparam [31:0]  LANES_U    = LANES;
    localparam [OCC_W-1:0] OCC_LIMIT = OCC_W'(FIFO_DEPTH);

    // ------------------------------------------------------------ flow control
    // occ_q counts beats accepted and not yet delivered (in the pipeline or the FIFO).
    reg  [OCC_W-1:0]     occ_q;
    reg                  in_ready_q;
    reg  [LATENCY-2:0]   valid_q;          // valid of register stages 0..7 and 3b (param read .. add_zero_point)
    wire                 accept  = in_valid_i && in_ready_q;
    wire                 deliver = out_valid_o && out_ready_i;
    wire [OCC_W-1:0]     occ_d   = occ_q + {{(OCC_W-1){1'b0}}, accept}
                                         - {{(OCC_W-1){1'b0}}, deliver};

    always @(posedge clk_i) begin
        if (rst_i) begin
            occ_q      <= '0;
            in_ready_q <= 1'b0;
            valid_q    <= '0;
        end else begin
            occ_q      <= occ_d;
            in_ready_q <= occ_d < OCC_LIMIT;
            valid_q    <= {valid_q[LATENCY-3:0], accept};
        end
    end
    assign in_ready_o = in_ready_q;

    // user sideband: stage 0 .. 7 registers (datapath, not reset); stage s in
    // user_q[USER_W*s +: USER_W]
    // (UW = USER_W, or 1 for an illegal USER_W so that it reaches the check above)
    localparam integer UW = (USER_W >= 1) ? USER_W : 1;
    reg [UW*(LATENCY-1)-1:0] user_q;
    always @(posedge clk_i) begin
        user_q <= {user_q[UW*(LATENCY-2)-1:0], in_user_i};
    end

    // ------------------------------------------------------------ parameter write decode
    wire [31:0] prm_chan_w = {{(32-CHAN_W){1'b0}}, prm_chan_i};
    wire [31:0] prm_bank_w = prm_chan_w % LANES_U;   // bank = channel % LANES
    wire [31:0] prm_addr_w = prm_chan_w / LANES_U;   // address in the bank = channel / LANES
    wire [PARAM_W-1:0] prm_wdata = {prm_bias_i, prm_m0_i, prm_shift_i, prm_zp_i,
                                    prm_act_min_i, prm_act_max_i};
    // Only the low bits of the bank index and address can be non-zero (< LANES, < TILES).
    wire unused_prm = &{1'b0, prm_addr_w[31:TILE_W]};

    // ------------------------------------------------------------ lanes
    wire [8*LANES-1:0] clamp_all;
    genvar l;
    generate
        for (l = 0; l < LANES; l = l + 1) begin : g_lane
            // stage 0 (parameter read): the bank's registered read data and the accumulator
            wire [PARAM_W-1:0]  prm_rdata;
            reg  signed [31:0]  acc_q;
            always @(posedge clk_i) acc_q <= in_data_i[32*l +: 32];

            requant_param_mem #(
                .WIDTH (PARAM_W),
                .DEPTH (TILES),
                .ADDR_W(TILE_W)
            ) u_param_mem (
                .clk_i  (clk_i),
                .we_i   (prm_we_i && (prm_bank_w == l)),
                .waddr_i(prm_addr_w[TILE_W-1:0]),
                .wdata_i(prm_wdata),
                .raddr_i(in_tile_i),
                .rdata_o(prm_rdata)
            );

            requant_lane #(
                .SINGLE_ROUNDING(SINGLE_ROUNDING)
            ) u_lane (
                .clk_i    (clk_i),
                .acc_i    (acc_q),
                .bias_i   (prm_rdata[93:62]),
                .m0_i     (prm_rdata[61:30]),
                .shift_i  (prm_rdata[29:24]),
                .zp_i     (prm_rdata[23:16]),
                .act_min_i(prm_rdata[15:8]),
                .act_max_i(prm_rdata[7:0]),
                .clamp_o  (clamp_all[8*l +: 8])
            );
        end
    endgenerate

    // ------------------------------------------------------------ stage 8: clamp -> FIFO
    wire [8*LANES+USER_W-1:0] fifo_rdata;
`ifdef FORMAL
    wire [$clog2(FIFO_DEPTH):0] f_fifo_count;   // formal only: entries in the FIFO
`endif
    requant_out_fifo #(
        .WIDTH(8 * LANES + USER_W),
        .DEPTH(FIFO_DEPTH)
    ) u_out_fifo (
        .clk_i  (clk_i),
        .rst_i  (rst_i),
        .push_i (valid_q[LATENCY-2]),
        .wdata_i({user_q[UW*(LATENCY-2) +: UW], clamp_all}),
        .valid_o(out_valid_o),
        .ready_i(out_ready_i),
        .rdata_o(fifo_rdata)
`ifdef FORMAL
        ,
        .f_count_o(f_fifo_count)
`endif
    );
    // Zero while out_valid_o is low (the FIFO storage is not reset), so no X leaves
    // the block.  (Not built for an illegal LANES / USER_W, so that they reach the
    // parameter check above instead of a zero-width select.)
    generate
        if (LANES >= 1 && USER_W >= 1) begin : g_out
            assign out_data_o = out_valid_o ? fifo_rdata[8*LANES-1:0]      : {(8*LANES){1'b0}};
            assign out_user_o = out_valid_o ? fifo_rdata[8*LANES +: USER_W] : {USER_W{1'b0}};
        end
    endgenerate

`ifdef FORMAL
    // ------------------------------------------------------------ formal properties
    // Proved by k-induction (formal/run.py, target "requant_ctrl"), with the FIFO's own
    // properties (requant_out_fifo.v) -- there its caller's promise, never pushing into a
    // full FIFO, is an assertion this module must meet.  QMAC_FORMAL_REQUANT_TOP: this
    // module is the top (reset assumed at the start).  Order and integrity of the beats
    // follow from valid_q / user_q shifting together (one stage per cycle) and the FIFO's
    // own proof; an end-to-end sequence-number check was too slow for z3 beyond ~12 steps.
    reg f_past_valid = 1'b0;
    always @(posedge clk_i) f_past_valid <= 1'b1;
`ifdef QMAC_FORMAL_REQUANT_TOP
    always @(*) if (!f_past_valid) assume (rst_i);
`endif
    integer f_i;
    reg [OCC_W:0] f_in_pipe;                     // beats in register stages 0..7
    always @(*) begin
        f_in_pipe = '0;
        for (f_i = 0; f_i < LATENCY - 1; f_i = f_i + 1)
            f_in_pipe = f_in_pipe + {{OCC_W{1'b0}}, valid_q[f_i]};
    end
    always @(*) begin
        if (f_past_valid) begin
            // the credit counter counts exactly the beats in the pipeline and the FIFO
            assert ({1'b0, occ_q} == f_in_pipe + (OCC_W + 1)'(f_fifo_count));
            assert (occ_q <= OCC_LIMIT);
            if (in_ready_q) assert (occ_q < OCC_LIMIT);
        end
    end
    always @(posedge clk_i) begin
        if (f_past_valid && !$past(rst_i) && !rst_i) begin
            // in_ready_o is the registered "a credit is left"
            assert (in_ready_q == (occ_q < OCC_LIMIT));
            // no deadlock, no bubble: a cycle with out_ready_i high frees a credit for
            // the next cycle whatever the input does
            if ($past(out_ready_i)) assert (in_ready_o);
            // an accepted beat is in stage 0 after its edge and moves one stage per
            // cycle, so it is pushed into the FIFO LATENCY - 1 edges later
            assert (valid_q[0] == $past(accept));
            assert (valid_q[LATENCY-2:1] == $past(valid_q[LATENCY-3:0]));
        end
    end
`endif

`ifndef SYNTHESIS
    // ------------------------------------------------------------ simulation checks
    // Values outside the documented ranges are the caller's error; say so loudly.
    always @(posedge clk_i) begin
        if (!rst_i && prm_we_i) begin
            if (prm_chan_w >= CHANNELS)
                $error("requant_pipeline: prm_chan_i = %0d is not below CHANNELS = %0d",
                       prm_chan_i, CHANNELS);
            if (prm_shift_i < -6'sd31 || prm_shift_i > 6'sd30)
                $error("requant_pipeline: prm_shift_i = %0d is outside -31..30", prm_shift_i);
            if (prm_act_min_i > prm_act_max_i)
                $error("requant_pipeline: prm_act_min_i = %0d exceeds prm_act_max_i = %0d",
                       prm_act_min_i, prm_act_max_i);
        end
        if (!rst_i && accept && {{(32-TILE_W){1'b0}}, in_tile_i} >= TILES)
            $error("requant_pipeline: in_tile_i = %0d is not below TILES = %0d",
                   in_tile_i, TILES);
    end
`endif

endmodule

`default_nettype wire
