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
// Configuration (inputs k_i, n_tiles_i, k_tile_i, bank_i; hold them while a block is in
// flight -- qlayer_top changes them only between layers, with the engine empty):
//   K        taps per output, 1 .. 2^16-1
//   N_TILES  output-channel tiles, 1 .. N_TILES_MAX
//   K_TILE   taps per chunk, 1 .. A_DEPTH
//   bank     weight / parameter bank the layer computes with (0 or 1)
// Weights (write port w_*): word t*K + k of bank w_bank_i holds w[t*COLS + j][k] in bits
// [8*j +: 8]; INT4 weights are written sign-extended to int8 and run unchanged. Requantize
// parameters (port prm_*): one output channel per write into bank prm_bank_i, as
// requant_pipeline documents. Two banks let the next layer's weights and parameters load
// while the current layer computes from the other bank (write the bank not in use).
//
// Buffers are synchronous-read RAMs (block RAM): the activation banks and the weight banks
// are read one stage ahead of the MAC array (an issue stage addresses them, the RAM output
// register is the operand beat offered to the array); the accumulator buffer is read with
// the address of the row the MAC array presents next, with a write-to-read bypass.
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
    // layer configuration (hold while a block is in flight)
    input  wire [15:0]          k_i,            // K: taps per output, 1 .. 65535
    input  wire [NT_W:0]        n_tiles_i,      // N_TILES: output-channel tiles, 1 .. N_TILES_MAX
    input  wire [15:0]          k_tile_i,       // K_TILE: taps per chunk, 1 .. A_DEPTH
    input  wire                 bank_i,         // weight / parameter bank the layer computes with
    // weight buffer write port
    input  wire                 w_we_i,         // write w_data_i to weight word w_addr_i of bank w_bank_i
    input  wire                 w_bank_i,       // weight bank written (the one not computed with)
    input  wire [WA_W-1:0]      w_addr_i,       // weight word: tile * K + k
    input  wire [COLS*8-1:0]    w_data_i,       // COLS int8 weights, channel tile*COLS + j in bits [8*j +: 8]
    // requantize parameter write port (passed to requant_pipeline)
    input  wire                 prm_we_i,       // write one channel's parameters
    input  wire                 prm_bank_i,     // parameter bank written (the one not computed with)
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
    output wire                 out_last_o,     // last row (ROWS-1) of a block's channel tile
    // status
    output wire                 array_fire_o    // the MAC array takes an operand beat this cycle
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
    wire [15:0]   k_q       = k_i;
    wire [NT_W:0] n_tiles_q = n_tiles_i;
    wire [15:0]   k_tile_q  = k_tile_i;

    // ---------------------------------------------------------------- buffers
    // Simple dual-port RAMs (one write port, one registered read port): block RAM.
    reg [COLS*8-1:0] w_mem [0:2*W_DEPTH-1];  // weight banks, word bank*W_DEPTH + tile*K + k
    reg [ROWS*8-1:0] a_mem [0:2*A_DEPTH-1];  // activation banks, word bank*A_DEPTH + k
    wire [WA_W:0] w_wr_word = (w_bank_i ? W_DEPTH[WA_W:0] : {(WA_W+1){1'b0}}) + {1'b0, w_addr_i};
    always @(posedge clk_i) begin
        if (w_we_i) begin
            w_mem[w_wr_word] <= w_data_i;
        end
    end

    // ---------------------------------------------------------------- fill side
    // Each bank holds one chunk; a bank is full from its last tap until its chunk has been
    // issued for every channel tile.
    reg        fill_bank_q;                  // bank being filled
    reg [15:0] fill_k_q;                     // tap index within the chunk being filled
    reg [15:0] fill_k1_q;                    // fill_k_q + 1 (kept beside it for the end compare)
    reg [15:0] fill_base_q;                  // first tap (of K) of the chunk being filled
    reg        fill_first_q;                 // fill_base_q == 0: the chunk is its block's first
    reg [15:0] fill_rest_q;                  // K - fill_base_q, valid when !fill_first_q
    reg [1:0]  full_q;                       // bank holds a complete chunk
    reg [15:0] len_q   [0:1];                // chunk length per bank
    reg [15:0] base_q  [0:1];                // first tap of the chunk per bank
    reg [1:0]  cfirst_q;                     // bank holds the first chunk of its block
    reg [1:0]  clast_q;                      // bank holds the last chunk of its block

    // Chunk length and end, without an adder in series with the compares (timing, ECP5:
    // docs/synthesis.md): the taps left in the block come from a register (K itself for a
    // block's first chunk, else K - base kept in fill_rest_q), and "last tap of the chunk"
    // (fill_k + 1 == min(rest, K_TILE)) is two equality compares beside the rest <= K_TILE
    // compare, one of them selected by it.
    wire [15:0] fill_rest  = fill_first_q ? k_q : fill_rest_q;          // taps left in the block
    wire        fill_lastc = fill_first_q ? (k_q <= k_tile_q)           // chunk ends the block
                                          : (fill_rest_q <= k_tile_q);
    wire [15:0] fill_len   = fill_lastc ? fill_rest : k_tile_q;         // min(rest, K_TILE)
    wire        fill_end   = fill_lastc ? (fill_k1_q == fill_rest)      // last tap of the chunk
                                        : (fill_k1_q == k_tile_q);
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
    // Issue stage: counters that address the next operand beat (bank, tap, channel tile).
    // When it advances, the RAMs read that beat into their output registers, which form
    // the operand stage (op_*) offered to the MAC array.
    reg          comp_bank_q;                // bank being issued to the MAC array
    reg [15:0]   comp_k_q;                   // tap within the chunk
    reg [NT_W-1:0] comp_t_q;                 // channel tile
    reg [23:0]   comp_tbase_q;               // comp_t_q * K: first weight word of the tile

    wire         op_ready;                   // mac_array accepts the beat
    wire         fifo_full;                  // no room to record another MAC-array tile
    reg          op_valid_q;                 // the operand stage holds a beat
    reg          op_first_q;                 // ... the first of a sum (k = 0 of its chunk)
    reg          op_last_q;                  // ... the last tap of its chunk
    reg [NT_W-1:0] op_tile_q;                // ... its channel tile
    reg          op_cfirst_q;                // ... its chunk is the block's first
    reg          op_clast_q;                 // ... its chunk is the block's last
    reg [ROWS*8-1:0] op_a_q;                 // activation RAM output register
    reg [COLS*8-1:0] op_b_q;                 // weight RAM output register
    wire         op_valid   = op_valid_q && !(op_last_q && fifo_full);
    wire         op_fire    = op_valid && op_ready;
    wire         comp_last  = (comp_k_q == len_q[comp_bank_q] - 16'd1);     // last tap of the chunk
    wire         comp_tlast = ({1'b0, comp_t_q} == n_tiles_q - 1'b1);       // last channel tile
    wire         iss_adv    = full_q[comp_bank_q] && (!op_valid_q || op_fire);  // read the next beat
    wire [23:0]  w_rd_addr  = comp_tbase_q + {8'd0, base_q[comp_bank_q]} + {8'd0, comp_k_q};
    wire [AB_W-1:0] comp_addr = (comp_bank_q ? AB_W'(A_DEPTH) : {AB_W{1'b0}})
                              + {1'b0, comp_k_q[AK_W-1:0]};  // word bank*A_DEPTH + k
    wire [WA_W:0] w_rd_word = (bank_i ? W_DEPTH[WA_W:0] : {(WA_W+1){1'b0}}) + {1'b0, w_rd_addr[WA_W-1:0]};
    // The host keeps N_TILES * K <= W_DEPTH (checked in simulation below), so the high
    // address bits are never used (one padding bit on top, so that the slice is not empty
    // when WA_W = 24; its low bits are the address, used through w_rd_addr)
    /* verilator lint_off UNUSEDSIGNAL */
    wire [24:0] w_rd_addr_ext = {1'b0, w_rd_addr};
    /* verilator lint_on UNUSEDSIGNAL */
    wire unused_hi = &{1'b0, w_rd_addr_ext[24:WA_W]};

    always @(posedge clk_i) begin
        if (iss_adv) begin
            op_a_q <= a_mem[comp_addr];
            op_b_q <= w_mem[w_rd_word];
        end
    end

    always @(posedge clk_i) begin
        if (iss_adv) begin
            op_first_q  <= (comp_k_q == 16'd0);
            op_last_q   <= comp_last;
            op_tile_q   <= comp_t_q;
            op_cfirst_q <= cfirst_q[comp_bank_q];
            op_clast_q  <= clast_q[comp_bank_q];
        end
        if (rst_i) begin
            fill_bank_q  <= 1'b0;
            fill_k_q     <= 16'd0;
            fill_k1_q    <= 16'd1;
            fill_base_q  <= 16'd0;
            fill_first_q <= 1'b1;
            fill_rest_q  <= 16'd0;
            full_q       <= 2'b00;
            comp_bank_q  <= 1'b0;
            comp_k_q     <= 16'd0;
            comp_t_q     <= {NT_W{1'b0}};
            comp_tbase_q <= 24'd0;
            op_valid_q   <= 1'b0;
        end else begin
            if (act_fire) begin
                if (fill_end) begin
                    full_q[fill_bank_q]   <= 1'b1;
                    len_q[fill_bank_q]    <= fill_len;
                    base_q[fill_bank_q]   <= fill_base_q;
                    cfirst_q[fill_bank_q] <= fill_first_q;
                    clast_q[fill_bank_q]  <= fill_lastc;
                    fill_bank_q  <= !fill_bank_q;
                    fill_k_q     <= 16'd0;
                    fill_k1_q    <= 16'd1;
                    fill_base_q  <= fill_lastc ? 16'd0 : fill_base_q + k_tile_q;
                    fill_first_q <= fill_lastc;
                    fill_rest_q  <= fill_rest - k_tile_q;     // used only if !fill_lastc
                end else begin
                    fill_k_q  <= fill_k_q + 16'd1;
                    fill_k1_q <= fill_k1_q + 16'd1;
                end
            end
            if (iss_adv) begin
                op_valid_q <= 1'b1;
            end else if (op_fire) begin
                op_valid_q <= 1'b0;
            end
            if (iss_adv) begin
                if (!comp_last) begin
                    comp_k_q <= comp_k_q + 16'd1;
                end else if (!comp_tlast) begin
                    comp_k_q     <= 16'd0;
                    comp_t_q     <= comp_t_q + 1'b1;
                    comp_tbase_q <= comp_tbase_q + {8'd0, k_q};
                end else begin
                    // chunk read for every tile (its last beat is in the RAM output
                    // registers): free the bank (the fill side only ever sets the other
                    // bank, so the two updates never collide)
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
        .op_a_i      (op_a_q),
        .op_b_i      (op_b_q),
        .op_first_i  (op_first_q),
        .op_last_i   (op_last_q),
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
    wire dq_push = op_fire && op_last_q;
    wire res_fire = res_valid && res_ready;
    wire dq_pop  = res_fire && res_last;
    assign fifo_full = (dq_count_q == ACC_FIFO[FQ_W:0]);

    always @(posedge clk_i) begin
        if (dq_push) begin
            dq_tile_q[dq_wr_q]  <= op_tile_q;
            dq_first_q[dq_wr_q] <= op_cfirst_q;
            dq_last_q[dq_wr_q]  <= op_clast_q;
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
    reg  [COLS*32-1:0] acc_mem [0:N_TILES_MAX*ROWS-1];  // word tile*ROWS + row (block RAM)
    reg  [ROW_W-1:0]   row_q;                            // row of the tile leaving the array
    wire [NT_W-1:0]    h_tile  = dq_tile_q[dq_rd_q];
    wire               h_first = dq_first_q[dq_rd_q];
    wire               h_last  = dq_last_q[dq_rd_q];
    wire [NT_W+ROW_W-1:0] acc_addr = h_tile * ROWS[NT_W+ROW_W-1:0] + {{NT_W{1'b0}}, row_q};
    // Synchronous read one cycle ahead: the address of the row presented after this edge
    // (the next row / the next descriptor when this one leaves). Read every cycle, so a
    // descriptor pushed at this edge is read with its real tile from the next cycle on,
    // long before its first row can leave the array (COLS+1 edges at least).
    wire [ROW_W-1:0]   row_d   = res_fire ? (res_last ? {ROW_W{1'b0}} : row_q + 1'b1) : row_q;
    wire [FQ_W-1:0]    rd_d    = dq_pop ? ((dq_rd_q == ACC_FIFO[FQ_W-1:0] - 1'b1) ? {FQ_W{1'b0}}
                                                                                   : dq_rd_q + 1'b1)
                                        : dq_rd_q;
    wire [NT_W+ROW_W-1:0] acc_raddr = dq_tile_q[rd_d] * ROWS[NT_W+ROW_W-1:0] + {{NT_W{1'b0}}, row_d};
    wire               acc_we  = res_fire && !h_last;
    reg  [COLS*32-1:0] acc_rdata_q;                      // RAM output register
    reg                byp_q;                            // the word read was written at the same edge ...
    reg  [COLS*32-1:0] byp_data_q;                       // ... with this value
    wire [COLS*32-1:0] acc_prev = byp_q ? byp_data_q : acc_rdata_q;
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
        if (acc_we) begin
            acc_mem[acc_addr] <= acc_sum;
        end
        acc_rdata_q <= acc_mem[acc_raddr];
        byp_q       <= acc_we && (acc_addr == acc_raddr);
        byp_data_q  <= acc_sum;
        if (rst_i) begin
            row_q <= {ROW_W{1'b0}};
        end else if (res_fire) begin
            row_q <= row_d;
        end
    end

    // ---------------------------------------------------------------- requantize
    // Two parameter banks: channel c of bank b is requant_pipeline channel
    // b * N_TILES_MAX * COLS + c, tile t of bank b its tile b * N_TILES_MAX + t.
    localparam integer RQ_TILE_W = (2 * N_TILES_MAX > 1) ? $clog2(2 * N_TILES_MAX) : 1;
    localparam integer RQ_CHAN_W = (2 * N_TILES_MAX * COLS > 1) ? $clog2(2 * N_TILES_MAX * COLS) : 1;
    wire [RQ_CHAN_W-1:0] rq_chan = (prm_bank_i ? RQ_CHAN_W'(N_TILES_MAX * COLS) : {RQ_CHAN_W{1'b0}})
                                   + RQ_CHAN_W'(prm_chan_i);
    wire [RQ_TILE_W-1:0] rq_tile = (bank_i ? RQ_TILE_W'(N_TILES_MAX) : {RQ_TILE_W{1'b0}})
                                   + RQ_TILE_W'(h_tile);

    requant_pipeline #(.LANES(COLS), .CHANNELS(2 * N_TILES_MAX * COLS), .USER_W(1)) u_requant (
        .clk_i         (clk_i),
        .rst_i         (rst_i),
        .prm_we_i      (prm_we_i),
        .prm_chan_i    (rq_chan),
        .prm_bias_i    (prm_bias_i),
        .prm_m0_i      (prm_m0_i),
        .prm_shift_i   (prm_shift_i),
        .prm_zp_i      (prm_zp_i),
        .prm_act_min_i (prm_act_min_i),
        .prm_act_max_i (prm_act_max_i),
        .in_valid_i    (res_valid && h_last),
        .in_ready_o    (rq_ready),
        .in_tile_i     (rq_tile),
        .in_data_i     (acc_sum),
        .in_user_i     (res_last),
        .out_valid_o   (out_valid_o),
        .out_ready_i   (out_ready_i),
        .out_data_o    (out_data_o),
        .out_user_o    (out_last_o)
    );
    assign array_fire_o = op_fire;
`ifndef SYNTHESIS
    // ---------------------------------------------------------------- simulation checks
    // A configuration outside the documented ranges is the host's error; say so loudly,
    // once per chunk (checked on the chunk's first activation beat, when it is used).
    always @(posedge clk_i) begin
        if (!rst_i && act_fire && fill_k_q == 16'd0) begin
            if (k_i == 16'd0)
                $error("qlayer_engine: K = 0 is outside 1..65535");
            if (n_tiles_i == 0 || 32'(n_tiles_i) > N_TILES_MAX)
                $error("qlayer_engine: N_TILES = %0d is outside 1..%0d", n_tiles_i, N_TILES_MAX);
            if (k_tile_i == 16'd0 || 32'(k_tile_i) > A_DEPTH)
                $error("qlayer_engine: K_TILE = %0d is outside 1..A_DEPTH = %0d", k_tile_i, A_DEPTH);
        end
        if (!rst_i && iss_adv && {8'd0, w_rd_addr} >= W_DEPTH)
            $error("qlayer_engine: weight word %0d read beyond W_DEPTH = %0d (need N_TILES * K <= W_DEPTH)",
                   w_rd_addr, W_DEPTH);
        if (!rst_i && res_valid && dq_count_q == 0)
            $error("qlayer_engine: a result row left the MAC array with no tile descriptor");
    end
`endif
endmodule
`default_nettype wire
