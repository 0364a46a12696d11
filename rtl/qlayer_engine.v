`default_nettype none
// qlayer_engine -- executes one quantized conv / fully-connected layer as a GEMM:
//   out[m][n] = requantize(sum_k act[m][k] * w[n][k], channel n)   (int8 x int8 -> int32 -> int8)
// on a ROWS x COLS output-stationary mac_array followed by a COLS-lane requant_pipeline.
// The host does im2col (rows m = output pixels, columns k = taps) and folds the input zero
// point into the bias (docs/arithmetic.md section 4). docs/microarchitecture.md
// ("Layer engine") draws the buffers and the schedule.
//
// Tiling. Rows come in blocks of ROWS (one MAC-array tile high); output channels in tiles
// of COLS (N_TILES tiles); K in chunks of K_TILE taps (the last chunk may be shorter).
// For every row block the engine runs
//     for each K chunk c:            (activation chunk in one bank of the ping-pong buffer)
//       for each channel tile t:     (weights of tile t, taps of chunk c, from the weight buffer)
//         one mac_array tile of the chunk's length -> ROWS partial-sum rows
// and adds the partial sums of successive chunks in the accumulator buffer; the rows of the
// last chunk go to the requantize pipeline instead. While one bank is computed the other
// fills with the next chunk, so loading overlaps compute.
//
// Streams (valid/ready, AXI-Stream semantics):
//   act  in : one beat per tap k of a row block: act_data_i[8*i +: 8] = act[block*ROWS + i][k].
//             A block is K beats (chunk after chunk, k ascending).
//   out  out: per row block and channel tile, ROWS beats (row i = 0..ROWS-1) of COLS int8:
//             out_data_o[8*j +: 8] = out[block*ROWS + i][tile*COLS + j]; out_last_o on row ROWS-1.
//             Order: block, tile, row.
// Configuration (write port cfg_*; change only while idle, i.e. with no block in flight):
//   address 0: K        taps per output, 1 .. 2^16-1
//   address 1: N_TILES  output-channel tiles, 1 .. N_TILES_MAX
//   address 2: K_TILE   taps per chunk, 1 .. A_DEPTH
// Weights (write port w_*): word t*K + k holds w[t*COLS + j][k] in bits [8*j +: 8]; INT4
// weights are written sign-extended to int8 and run unchanged. Requantize parameters
// (port prm_*): one output channel per write, as requant_pipeline documents.
module qlayer_engine #(
    parameter integer ROWS        = 8,     // MAC-array rows: activation rows per block (>= 1)
    parameter integer COLS        = 8,     // MAC-array columns: output channels per tile, requantize lanes (>= 1)
    parameter integer A_DEPTH     = 64,    // taps per activation bank (two banks): K_TILE <= A_DEPTH (>= 1)
    parameter integer W_DEPTH     = 2048,  // weight-buffer words of COLS int8: N_TILES * K <= W_DEPTH (>= 1)
    parameter integer N_TILES_MAX = 8,     // output-channel tiles: channels <= N_TILES_MAX * COLS (>= 1)
    parameter integer ACC_FIFO    = 4,     // descriptors of MAC-array tiles in flight (>= 3; 2 are ever used)
    // derived widths (do not override)
    parameter integer WA_W  = (W_DEPTH > 1) ? $clog2(W_DEPTH) : 1,                            // w_addr_i width
    parameter integer CH_W  = (N_TILES_MAX * COLS > 1) ? $clog2(N_TILES_MAX * COLS) : 1,     // prm_chan_i width
    parameter integer NT_W  = (N_TILES_MAX > 1) ? $clog2(N_TILES_MAX) : 1                    // tile index width
) (
    input  wire                 clk_i,          // clock, rising edge
    input  wire                 rst_i,          // synchronous reset, active high (drops work in flight)
    // configuration registers
    input  wire                 cfg_we_i,       // write cfg_wdata_i to register cfg_addr_i
    input  wire [1:0]           cfg_addr_i,     // 0: K, 1: N_TILES, 2: K_TILE
    input  wire [31:0]          cfg_wdata_i,    // register value (low bits used)
    // weight buffer write port
    input  wire                 w_we_i,         // write w_data_i to weight word w_addr_i
    input  wire [WA_W-1:0]      w_addr_i,       // weight word: tile * K + k
    input  wire [COLS*8-1:0]    w_data_i,       // COLS int8 weights, channel tile*COLS + j in bits [8*j +: 8]
    // requantize parameter write port (passed to requant_pipeline)
    input  wire                 prm_we_i,       // write one channel's parameters
    input  wire [CH_W-1:0]      prm_chan_i,     // output channel
    input  wire signed [31:0]   prm_bias_i,     // int32 bias, input zero point folded in
    input  wire signed [31:0]   prm_m0_i,       // int32 multiplier m0
    input  wire signed [5:0]    prm_shift_i,    // shift, -31..30 (positive = left)
    input  wire signed [7:0]    prm_zp_i,       // int8 output zero point
    input  wire signed [7:0]    prm_act_min_i,  // int8 clamp lower bound (fused activation)
    input  wire signed [7:0]    prm_act_max_i,  // int8 clamp upper bound
    // activation stream (im2col columns of a row block)
    input  wire                 act_valid_i,    // beat valid
    output wire                 act_ready_o,    // beat accepted
    input  wire [ROWS*8-1:0]    act_data_i,     // act[block*ROWS + i][k] (int8) in bits [8*i +: 8]
    // output stream (requantized int8 rows)
    output wire                 out_valid_o,    // beat valid
    input  wire                 out_ready_i,    // beat accepted
    output wire [COLS*8-1:0]    out_data_o,     // out[row][tile*COLS + j] (int8) in bits [8*j +: 8]
    output wire                 out_last_o      // last row (ROWS-1) of a block's channel tile
);
    generate
        if (ROWS < 1 || COLS < 1 || A_DEPTH < 1 || W_DEPTH < 1 || N_TILES_MAX < 1 || ACC_FIFO < 3
            || W_DEPTH > (1 << 24) || A_DEPTH > (1 << 16) || (1 << WA_W) < W_DEPTH || (1 << NT_W) < N_TILES_MAX
            || (1 << CH_W) < N_TILES_MAX * COLS) begin : g_bad_params
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "qlayer_engine: ROWS = %0d, COLS = %0d, A_DEPTH = %0d, W_DEPTH = %0d, N_TILES_MAX = %0d, ACC_FIFO = %0d: all must be >= 1 (ACC_FIFO >= 3) and the derived widths left at their defaults",
                           ROWS, COLS, A_DEPTH, W_DEPTH, N_TILES_MAX, ACC_FIFO);
`else
            $error("qlayer_engine: ROWS = %0d, COLS = %0d, A_DEPTH = %0d, W_DEPTH = %0d, N_TILES_MAX = %0d, ACC_FIFO = %0d: all must be >= 1 (ACC_FIFO >= 3) and the derived widths left at their defaults",
                   ROWS, COLS, A_DEPTH, W_DEPTH, N_TILES_MAX, ACC_FIFO);
`endif
        end
    endgenerate

    localparam integer AK_W  = (A_DEPTH > 1) ? $clog2(A_DEPTH) : 1;     // tap index within a chunk
    localparam integer AB_W  = AK_W + 1;                                // activation word address
    localparam integer ROW_W = (ROWS > 1) ? $clog2(ROWS) : 1;           // row index within a block
    localparam integer FQ_W  = (ACC_FIFO > 1) ? $clog2(ACC_FIFO) : 1;   // descriptor FIFO pointer

    // ---------------------------------------------------------------- configuration
    reg [15:0]   k_q;        // K: taps per output
    reg [NT_W:0] n_tiles_q;  // N_TILES
    reg [15:0]   k_tile_q;   // K_TILE: taps per chunk
    always @(posedge clk_i) begin
        if (rst_i) begin
            k_q       <= 16'd1;
            n_tiles_q <= 1;
            k_tile_q  <= 16'd1;
        end else if (cfg_we_i) begin
            case (cfg_addr_i)
                2'd0:    k_q       <= cfg_wdata_i[15:0];
                2'd1:    n_tiles_q <= cfg_wdata_i[NT_W:0];
                2'd2:    k_tile_q  <= cfg_wdata_i[15:0];
                default: ;
            endcase
        end
    end

    // ---------------------------------------------------------------- buffers
    reg [COLS*8-1:0] w_mem [0:W_DEPTH-1];    // weights, word tile*K + k
    reg [ROWS*8-1:0] a_mem [0:2*A_DEPTH-1];  // activation banks, word bank*A_DEPTH + k
    always @(posedge clk_i) begin
        if (w_we_i) begin
            w_mem[w_addr_i] <= w_data_i;
        end
    end

    // ---------------------------------------------------------------- fill side
    // Each bank holds one chunk; a bank is full from its last tap until its chunk has been
    // issued for every channel tile.
    reg        fill_bank_q;                  // bank being filled
    reg [15:0] fill_k_q;                     // tap index within the chunk being filled
    reg [15:0] fill_base_q;                  // first tap (of K) of the chunk being filled
    reg [1:0]  full_q;                       // bank holds a complete chunk
    reg [15:0] len_q   [0:1];                // chunk length per bank
    reg [15:0] base_q  [0:1];                // first tap of the chunk per bank
    reg [1:0]  cfirst_q;                     // bank holds the first chunk of its block
    reg [1:0]  clast_q;                      // bank holds the last chunk of its block

    wire [15:0] fill_rest = k_q - fill_base_q;                          // taps left in the block
    wire [15:0] fill_len  = (fill_rest < k_tile_q) ? fill_rest : k_tile_q;
    wire        fill_end  = (fill_k_q == fill_len - 16'd1);             // last tap of the chunk
    wire        fill_lastc = (fill_rest <= k_tile_q);                   // chunk ends the block
    assign act_ready_o = !full_q[fill_bank_q];
    // word bank*A_DEPTH + k (not {bank, k}: A_DEPTH need not be a power of two)
    wire [AB_W-1:0] fill_addr = (fill_bank_q ? AB_W'(A_DEPTH) : {AB_W{1'b0}})
                              + {1'b0, fill_k_q[AK_W-1:0]};
    wire act_fire = act_valid_i && act_ready_o;

    always @(posedge clk_i) begin
        if (act_fire) begin
            a_mem[fill_addr] <= act_data_i;
        end
    end

    // ---------------------------------------------------------------- compute side
    reg          comp_bank_q;                // bank being issued to the MAC array
    reg [15:0]   comp_k_q;                   // tap within the chunk
    reg [NT_W-1:0] comp_t_q;                 // channel tile
    reg [23:0]   comp_tbase_q;               // comp_t_q * K: first weight word of the tile

    wire         op_ready;                   // mac_array accepts the beat
    wire         fifo_full;                  // no room to record another MAC-array tile
    wire         comp_last  = (comp_k_q == len_q[comp_bank_q] - 16'd1);     // last tap of the chunk
    wire         comp_tlast = ({1'b0, comp_t_q} == n_tiles_q - 1'b1);       // last channel tile
    wire         op_valid   = full_q[comp_bank_q] && !(comp_last && fifo_full);
    wire         op_fire    = op_valid && op_ready;
    wire [23:0]  w_rd_addr  = comp_tbase_q + {8'd0, base_q[comp_bank_q]} + {8'd0, comp_k_q};
    wire [AB_W-1:0]   comp_addr = (comp_bank_q ? AB_W'(A_DEPTH) : {AB_W{1'b0}})
                                + {1'b0, comp_k_q[AK_W-1:0]};  // word bank*A_DEPTH + k
    wire [ROWS*8-1:0] op_a  = a_mem[comp_addr];
    wire [COLS*8-1:0] op_b  = w_mem[w_rd_addr[WA_W-1:0]];
    // The host keeps N_TILES * K <= W_DEPTH and registers in range (checked in simulation
    // below), so the high address bits and the high register-write bits are never used.
    // (one padding bit on top, so that the slice is not empty when WA_W = 24; its low
    // bits are the address, used through w_rd_addr)
    /* verilator lint_off UNUSEDSIGNAL */
    wire [24:0] w_rd_addr_ext = {1'b0, w_rd_addr};
    /* verilator lint_on UNUSEDSIGNAL */
    wire unused_hi = &{1'b0, w_rd_addr_ext[24:WA_W], cfg_wdata_i[31:16]};

    always @(posedge clk_i) begin
        if (rst_i) begin
            fill_bank_q  <= 1'b0;
            fill_k_q     <= 16'd0;
            fill_base_q  <= 16'd0;
            full_q       <= 2'b00;
            comp_bank_q  <= 1'b0;
            comp_k_q     <= 16'd0;
            comp_t_q     <= {NT_W{1'b0}};
            comp_tbase_q <= 24'd0;
        end else begin
            if (act_fire) begin
                if (fill_end) begin
                    full_q[fill_bank_q]   <= 1'b1;
                    len_q[fill_bank_q]    <= fill_len;
                    base_q[fill_bank_q]   <= fill_base_q;
                    cfirst_q[fill_bank_q] <= (fill_base_q == 16'd0);
                    clast_q[fill_bank_q]  <= fill_lastc;
                    fill_bank_q <= !fill_bank_q;
                    fill_k_q    <= 16'd0;
                    fill_base_q <= fill_lastc ? 16'd0 : fill_base_q + k_tile_q;
                end else begin
                    fill_k_q <= fill_k_q + 16'd1;
                end
            end
            if (op_fire) begin
                if (!comp_last) begin
                    comp_k_q <= comp_k_q + 16'd1;
                end else if (!comp_tlast) begin
                    comp_k_q     <= 16'd0;
                    comp_t_q     <= comp_t_q + 1'b1;
                    comp_tbase_q <= comp_tbase_q + {8'd0, k_q};
                end else begin
                    // chunk issued for every tile: free the bank (the fill side only ever
                    // sets the other bank, so the two updates never collide)
                    comp_k_q     <= 16'd0;
                    comp_t_q     <= {NT_W{1'b0}};
                    comp_tbase_q <= 24'd0;
                    full_q[comp_bank_q] <= 1'b0;
                    comp_bank_q  <= !comp_bank_q;
                end
            end
        end
    end

    // ---------------------------------------------------------------- MAC array
    wire               res_valid;            // a partial-sum row leaves the array
    wire               res_ready;            // ... and is taken
    wire [COLS*32-1:0] res_data;             // COLS int32 sums of the row
    wire               res_last;             // row ROWS-1 of the tile

    mac_array #(.ROWS(ROWS), .COLS(COLS)) u_array (
        .clk_i       (clk_i),
        .rst_i       (rst_i),
        .op_valid_i  (op_valid),
        .op_ready_o  (op_ready),
        .op_a_i      (op_a),
        .op_b_i      (op_b),
        .op_first_i  (comp_k_q == 16'd0),
        .op_last_i   (comp_last),
        .res_valid_o (res_valid),
        .res_ready_i (res_ready),
        .res_data_o  (res_data),
        .res_last_o  (res_last)
    );

    // ---------------------------------------------------------------- tile descriptors
    // One entry per MAC-array tile in flight (pushed with its last operand beat, popped with
    // its last result row): which channel tile it computed and where its chunk lies in K.
    reg [NT_W-1:0] dq_tile_q  [0:ACC_FIFO-1];  // channel tile
    reg            dq_first_q [0:ACC_FIFO-1];  // first chunk: start the sum from zero
    reg            dq_last_q  [0:ACC_FIFO-1];  // last chunk: requantize the sum
    reg [FQ_W-1:0] dq_wr_q;                    // write pointer
    reg [FQ_W-1:0] dq_rd_q;                    // read pointer
    reg [FQ_W:0]   dq_count_q;                 // entries held
    wire dq_push = op_fire && comp_last;
    wire res_fire = res_valid && res_ready;
    wire dq_pop  = res_fire && res_last;
    assign fifo_full = (dq_count_q == ACC_FIFO[FQ_W:0]);

    always @(posedge clk_i) begin
        if (dq_push) begin
            dq_tile_q[dq_wr_q]  <= comp_t_q;
            dq_first_q[dq_wr_q] <= cfirst_q[comp_bank_q];
            dq_last_q[dq_wr_q]  <= clast_q[comp_bank_q];
        end
        if (rst_i) begin
            dq_wr_q    <= {FQ_W{1'b0}};
            dq_rd_q    <= {FQ_W{1'b0}};
            dq_count_q <= {(FQ_W+1){1'b0}};
        end else begin
            if (dq_push) begin
                dq_wr_q <= (dq_wr_q == ACC_FIFO[FQ_W-1:0] - 1'b1) ? {FQ_W{1'b0}} : dq_wr_q + 1'b1;
            end
            if (dq_pop) begin
                dq_rd_q <= (dq_rd_q == ACC_FIFO[FQ_W-1:0] - 1'b1) ? {FQ_W{1'b0}} : dq_rd_q + 1'b1;
            end
            dq_count_q <= dq_count_q + {{FQ_W{1'b0}}, dq_push} - {{FQ_W{1'b0}}, dq_pop};
        end
    end

    // ---------------------------------------------------------------- accumulator buffer
    // Partial sums of the row block, one word per (channel tile, row): a chunk's rows are
    // added to the previous chunks' sums (int32, wrapping) and written back, or -- for the
    // last chunk -- sent on to the requantize pipeline.
    reg  [COLS*32-1:0] acc_mem [0:N_TILES_MAX*ROWS-1];  // word tile*ROWS + row
    reg  [ROW_W-1:0]   row_q;                            // row of the tile leaving the array
    wire [NT_W-1:0]    h_tile  = dq_tile_q[dq_rd_q];
    wire               h_first = dq_first_q[dq_rd_q];
    wire               h_last  = dq_last_q[dq_rd_q];
    wire [NT_W+ROW_W-1:0] acc_addr = h_tile * ROWS[NT_W+ROW_W-1:0] + {{NT_W{1'b0}}, row_q};
    wire [COLS*32-1:0] acc_prev = acc_mem[acc_addr];
    reg  [COLS*32-1:0] acc_sum;                          // the row's running sums
    integer j;
    always @* begin
        for (j = 0; j < COLS; j = j + 1) begin
            acc_sum[32*j +: 32] = res_data[32*j +: 32] + (h_first ? 32'd0 : acc_prev[32*j +: 32]);
        end
    end

    wire rq_ready;                           // requantize pipeline takes the row
    assign res_ready = h_last ? rq_ready : 1'b1;

    always @(posedge clk_i) begin
        if (res_fire && !h_last) begin
            acc_mem[acc_addr] <= acc_sum;
        end
        if (rst_i) begin
            row_q <= {ROW_W{1'b0}};
        end else if (res_fire) begin
            row_q <= res_last ? {ROW_W{1'b0}} : row_q + 1'b1;
        end
    end

    // ---------------------------------------------------------------- requantize
    requant_pipeline #(.LANES(COLS), .CHANNELS(N_TILES_MAX * COLS), .USER_W(1)) u_requant (
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
        .in_valid_i    (res_valid && h_last),
        .in_ready_o    (rq_ready),
        .in_tile_i     (h_tile),
        .in_data_i     (acc_sum),
        .in_user_i     (res_last),
        .out_valid_o   (out_valid_o),
        .out_ready_i   (out_ready_i),
        .out_data_o    (out_data_o),
        .out_user_o    (out_last_o)
    );
`ifndef SYNTHESIS
    // ---------------------------------------------------------------- simulation checks
    // A configuration outside the documented ranges is the host's error; say so loudly.
    always @(posedge clk_i) begin
        if (!rst_i && cfg_we_i) begin
            if (cfg_addr_i == 2'd0 && (cfg_wdata_i == 0 || cfg_wdata_i > 32'hFFFF))
                $error("qlayer_engine: K = %0d is outside 1..65535", cfg_wdata_i);
            if (cfg_addr_i == 2'd1 && (cfg_wdata_i == 0 || cfg_wdata_i > N_TILES_MAX))
                $error("qlayer_engine: N_TILES = %0d is outside 1..%0d", cfg_wdata_i, N_TILES_MAX);
            if (cfg_addr_i == 2'd2 && (cfg_wdata_i == 0 || cfg_wdata_i > A_DEPTH))
                $error("qlayer_engine: K_TILE = %0d is outside 1..A_DEPTH = %0d", cfg_wdata_i, A_DEPTH);
            if (cfg_addr_i == 2'd3)
                $error("qlayer_engine: cfg_addr_i = 3 is not a register");
        end
        if (!rst_i && op_fire && {8'd0, w_rd_addr} >= W_DEPTH)
            $error("qlayer_engine: weight word %0d read beyond W_DEPTH = %0d (need N_TILES * K <= W_DEPTH)",
                   w_rd_addr, W_DEPTH);
        if (!rst_i && res_valid && dq_count_q == 0)
            $error("qlayer_engine: a result row left the MAC array with no tile descriptor");
    end
`endif
endmodule
`default_nettype wire
