`default_nettype none
// qmac_top -- the SoC-facing accelerator: qlayer_engine behind standard AMBA interfaces.
//
//   s_axil_*    AXI4-Lite slave: layer configuration, start, done + interrupt, error flags,
//               performance counters (docs/registers.md, generated from rtl/regs.yaml)
//   s_axis_act  AXI4-Stream slave: activations (im2col columns of row blocks)
//   s_axis_wgt  AXI4-Stream slave: weight words of the next layer
//   s_axis_prm  AXI4-Stream slave: requantize parameters of the next layer, one channel a beat
//   m_axis_out  AXI4-Stream master: requantized int8 outputs
//   irq_o       level interrupt: (IRQ_STATUS & IRQ_ENABLE) != 0
//
// Layer queue. The host writes LAYER_K / N_TILES / K_TILE / BLOCKS, streams the layer's
// weights and parameters (each ended by TLAST), then writes CTRL.START: the layer joins a
// two-entry queue (running + pending) and the weight / parameter streams switch to the
// other bank of the engine's two. So the next layer's weights and parameters load while
// the current layer computes; only with two layers queued do those streams wait (TREADY
// low). A layer runs from the cycle it heads the queue until its last output beat has
// left: it takes BLOCKS * K activation beats (TREADY drops after the last one until the
// next layer runs) and gives BLOCKS * N_TILES * ROWS output beats, TLAST on the last; then
// IRQ_STATUS.DONE is set and the pending layer (if any) runs. The engine is empty at that
// point, so its configuration inputs change with nothing in flight.
//
// Units (UNITS = 1, docs/top.md): window_engine (depthwise conv, pooling, MEAN) and
// eltwise_engine (ADD / SUB / MUL) sit beside the engine, LANES = COLS. LAYER_OP of a
// queued layer selects the unit its streams feed: activations -> engine / window input /
// eltwise A; weights -> engine bank / window taps / eltwise B (during the job); parameters
// -> engine bank / window / eltwise requantize memory; the unit's output -> m_axis_out.
// Every op goes through the same two-entry queue, in START order (one layer runs at a
// time); a unit's configuration (UNIT_CFG_ADDR / UNIT_CFG_DATA) and its weight /
// parameter memories are written only while it has no job queued (the streams wait,
// a configuration write is refused with ERROR.UNIT_BUSY).
//
// AXI port names follow the AMBA specification (TDATA, TVALID, TREADY, TLAST, TKEEP with an
// s_axil_ / s_axis_<stream>_ / m_axis_<stream>_ prefix) rather than the _i/_o suffixes of
// the rest of rtl/, so that bus tools (cocotbext-axi, IP integrators) find them.
// Clock clk_i, reset rst_i: synchronous, active high, as everywhere in rtl/.
module qmac_top #(
    parameter integer ROWS        = 8,     // MAC-array rows: activation int8 lanes per beat (1..255)
    parameter integer COLS        = 8,     // MAC-array columns = requantize lanes = output lanes per beat (1..255)
    parameter integer A_DEPTH     = 64,    // taps per activation bank: K_TILE <= A_DEPTH (1..65535)
    parameter integer W_DEPTH     = 2048,  // weight words per bank: N_TILES * K <= W_DEPTH (1..65536)
    parameter integer N_TILES_MAX = 8,     // output-channel tiles per layer (1..255)
    parameter integer UNITS       = 1,     // 1: window_engine + eltwise_engine built in (needs ROWS == COLS); 0: GEMM only
    parameter integer H_MAX       = 32,    // window unit input tile height, power of two (1..32768)
    parameter integer W_MAX       = 32,    // window unit input tile width, power of two (1..32768)
    parameter integer TAPS_MAX    = 25,    // window unit depthwise kernel taps (1..255)
    parameter integer GROUPS_MAX  = 8      // window unit requantize channel groups of COLS channels (1..255)
) (
    input  wire                 clk_i,              // clock, rising edge
    input  wire                 rst_i,              // synchronous reset, active high (drops everything in flight)
    output wire                 irq_o,              // interrupt, active high level
    // AXI4-Lite slave (32-bit data, 8-bit byte address)
    input  wire [7:0]           s_axil_awaddr,      // write address
    /* verilator lint_off UNUSEDSIGNAL */  // protection types are accepted and ignored
    input  wire [2:0]           s_axil_awprot,      // write protection type (ignored)
    input  wire [2:0]           s_axil_arprot,      // read protection type (ignored)
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire                 s_axil_awvalid,     // write address valid
    output wire                 s_axil_awready,     // write address ready
    input  wire [31:0]          s_axil_wdata,       // write data
    input  wire [3:0]           s_axil_wstrb,       // write byte strobes
    input  wire                 s_axil_wvalid,      // write data valid
    output wire                 s_axil_wready,      // write data ready
    output wire [1:0]           s_axil_bresp,       // write response: OKAY or SLVERR
    output wire                 s_axil_bvalid,      // write response valid
    input  wire                 s_axil_bready,      // write response ready
    input  wire [7:0]           s_axil_araddr,      // read address
    input  wire                 s_axil_arvalid,     // read address valid
    output wire                 s_axil_arready,     // read address ready
    output wire [31:0]          s_axil_rdata,       // read data
    output wire [1:0]           s_axil_rresp,       // read response: OKAY or SLVERR
    output wire                 s_axil_rvalid,      // read data valid
    input  wire                 s_axil_rready,      // read data ready
    // AXI4-Stream slave: activations
    input  wire [ROWS*8-1:0]    s_axis_act_tdata,   // byte i = act[block*ROWS + i][k]
    input  wire [ROWS-1:0]      s_axis_act_tkeep,   // byte enables, must be all ones
    input  wire                 s_axis_act_tvalid,  // beat valid
    output wire                 s_axis_act_tready,  // beat accepted
    input  wire                 s_axis_act_tlast,   // last beat of the layer
    // AXI4-Stream slave: weights
    input  wire [COLS*8-1:0]    s_axis_wgt_tdata,   // weight word t*K + k: byte j = w[t*COLS + j][k]
    input  wire [COLS-1:0]      s_axis_wgt_tkeep,   // byte enables, must be all ones
    input  wire                 s_axis_wgt_tvalid,  // beat valid
    output wire                 s_axis_wgt_tready,  // beat accepted
    input  wire                 s_axis_wgt_tlast,   // last word of the layer's weights
    // AXI4-Stream slave: requantize parameters
    input  wire [127:0]         s_axis_prm_tdata,   // one channel: bias, m0, shift, zp, act_min, act_max (docs/registers.md)
    input  wire [15:0]          s_axis_prm_tkeep,   // byte enables, must be all ones
    input  wire                 s_axis_prm_tvalid,  // beat valid
    output wire                 s_axis_prm_tready,  // beat accepted
    input  wire                 s_axis_prm_tlast,   // last channel of the layer
    // AXI4-Stream master: outputs
    output wire [COLS*8-1:0]    m_axis_out_tdata,   // byte j = out[block*ROWS + i][t*COLS + j]
    output wire [COLS-1:0]      m_axis_out_tkeep,   // all ones
    output wire                 m_axis_out_tvalid,  // beat valid
    input  wire                 m_axis_out_tready,  // beat accepted
    output wire                 m_axis_out_tlast    // last beat of the layer
);
    generate
        if (ROWS < 1 || ROWS > 255 || COLS < 1 || COLS > 255 || A_DEPTH < 1 || A_DEPTH > 65535
            || W_DEPTH < 1 || W_DEPTH > 65536 || N_TILES_MAX < 1 || N_TILES_MAX > 255
            || UNITS < 0 || UNITS > 1) begin : g_bad_params
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "qmac_top: ROWS = %0d, COLS = %0d, A_DEPTH = %0d, W_DEPTH = %0d, N_TILES_MAX = %0d: allowed ROWS, COLS, N_TILES_MAX 1..255, A_DEPTH 1..65535, W_DEPTH 1..65536",
                           ROWS, COLS, A_DEPTH, W_DEPTH, N_TILES_MAX);
`else
            $error("qmac_top: ROWS = %0d, COLS = %0d, A_DEPTH = %0d, W_DEPTH = %0d, N_TILES_MAX = %0d: allowed ROWS, COLS, N_TILES_MAX 1..255, A_DEPTH 1..65535, W_DEPTH 1..65536",
                   ROWS, COLS, A_DEPTH, W_DEPTH, N_TILES_MAX);
`endif
        end
        if (UNITS == 1 && (ROWS != COLS || H_MAX < 1 || H_MAX > 32768 || W_MAX < 1 || W_MAX > 32768
            || (H_MAX & (H_MAX - 1)) != 0 || (W_MAX & (W_MAX - 1)) != 0
            || TAPS_MAX < 1 || TAPS_MAX > 255 || GROUPS_MAX < 1 || GROUPS_MAX > 255)) begin : g_bad_units
            // the units take activation beats (ROWS bytes) as COLS lanes and share the
            // output stream (COLS bytes): one beat width for every stream
`ifdef __ICARUS__
            initial $fatal(1, "qmac_top: UNITS = 1 with ROWS = %0d, COLS = %0d, H_MAX = %0d, W_MAX = %0d, TAPS_MAX = %0d, GROUPS_MAX = %0d: the units need ROWS == COLS, H_MAX and W_MAX powers of two 1..32768, TAPS_MAX and GROUPS_MAX 1..255 (or UNITS = 0)",
                           ROWS, COLS, H_MAX, W_MAX, TAPS_MAX, GROUPS_MAX);
`else
            $error("qmac_top: UNITS = 1 with ROWS = %0d, COLS = %0d, H_MAX = %0d, W_MAX = %0d, TAPS_MAX = %0d, GROUPS_MAX = %0d: the units need ROWS == COLS, H_MAX and W_MAX powers of two 1..32768, TAPS_MAX and GROUPS_MAX 1..255 (or UNITS = 0)",
                   ROWS, COLS, H_MAX, W_MAX, TAPS_MAX, GROUPS_MAX);
`endif
        end
    endgenerate

`include "qmac_regs.vh"

    localparam integer WA_W  = (W_DEPTH > 1) ? $clog2(W_DEPTH) : 1;                          // weight word address
    localparam integer CH_W  = (N_TILES_MAX * COLS > 1) ? $clog2(N_TILES_MAX * COLS) : 1;   // parameter channel
    localparam integer NT_W  = (N_TILES_MAX > 1) ? $clog2(N_TILES_MAX) : 1;                  // tile index
    localparam integer ROW_W = (ROWS > 1) ? $clog2(ROWS) : 1;                                 // row within a block
    localparam [1:0]   OKAY = 2'b00, SLVERR = 2'b10;                                          // AXI responses
    localparam [16:0]  N_CHAN = 17'(N_TILES_MAX * COLS);                                      // parameter channels per bank
    localparam [1:0]   OP_GEMM = 2'd0, OP_WIN = 2'd1, OP_ELT = 2'd2;                          // LAYER_OP
    localparam integer TW    = (TAPS_MAX > 1) ? $clog2(TAPS_MAX) : 1;                         // window weight word
    localparam integer WCH_W = (GROUPS_MAX * COLS > 1) ? $clog2(GROUPS_MAX * COLS) : 1;      // window parameter channel
    localparam integer ECH_W = (COLS > 1) ? $clog2(COLS) : 1;                                 // eltwise parameter lane
    localparam integer GW    = (GROUPS_MAX > 1) ? $clog2(GROUPS_MAX) : 1;                     // window channel group
    localparam integer URQ_W = ((GROUPS_MAX + 1) * COLS > 1) ? $clog2((GROUPS_MAX + 1) * COLS) : 1;  // shared unit requantize channel
    localparam integer UT_W  = (GROUPS_MAX + 1 > 1) ? $clog2(GROUPS_MAX + 1) : 1;            // its tile
    localparam integer HL2   = (H_MAX > 1) ? $clog2(H_MAX) : 0;
    localparam integer WL2   = (W_MAX > 1) ? $clog2(W_MAX) : 0;

    // ================================================================ AXI4-Lite slave
    // Write: address and data are taken independently (one each), the register is written
    // when both are held and no response is outstanding, then B answers. Read: one address
    // at a time, R answers the cycle after. No combinational path from any input to a ready.
    reg        aw_full_q, w_full_q, bvalid_q, rvalid_q;
    reg [7:0]  aw_addr_q;
    reg [31:0] w_data_q, rdata_q;
    reg [3:0]  w_strb_q;
    reg [1:0]  bresp_q, rresp_q;
    wire       do_write = aw_full_q && w_full_q && !bvalid_q;
    wire       do_read  = s_axil_arvalid && !rvalid_q;
    wire [31:0] wmask   = {{8{w_strb_q[3]}}, {8{w_strb_q[2]}}, {8{w_strb_q[1]}}, {8{w_strb_q[0]}}};
    wire [31:0] wbits   = w_data_q & wmask;                       // the 1s written (W1C / commands)
    wire [7:0]  wa      = {aw_addr_q[7:2], 2'b00};
    wire [7:0]  ra      = {s_axil_araddr[7:2], 2'b00};
    // the unaligned low address bits name the same register
    wire unused_lo = &{1'b0, aw_addr_q[1:0], s_axil_araddr[1:0]};

    function automatic [31:0] merge(input [31:0] old, input [31:0] data, input [31:0] mask);
        merge = (old & ~mask) | (data & mask);
    endfunction

    wire w_ctrl   = do_write && wa == REG_CTRL;
    wire w_irqs   = do_write && wa == REG_IRQ_STATUS;
    wire w_irqe   = do_write && wa == REG_IRQ_ENABLE;
    wire w_err    = do_write && wa == REG_ERROR;
    wire w_lk     = do_write && wa == REG_LAYER_K;
    wire w_lnt    = do_write && wa == REG_LAYER_N_TILES;
    wire w_lkt    = do_write && wa == REG_LAYER_K_TILE;
    wire w_lb     = do_write && wa == REG_LAYER_BLOCKS;
    wire w_lop    = do_write && wa == REG_LAYER_OP;
    wire w_ucfga  = do_write && wa == REG_UNIT_CFG_ADDR;
    wire w_ucfgd  = do_write && wa == REG_UNIT_CFG_DATA;
    wire w_ok     = w_ctrl || w_irqs || w_irqe || w_err || w_lk || w_lnt || w_lkt || w_lb
                 || w_lop || w_ucfga || w_ucfgd;
    wire start    = w_ctrl && wbits[CTRL_START_LSB];
    wire clr_perf = w_ctrl && wbits[CTRL_CLEAR_PERF_LSB];

    always @(posedge clk_i) begin
        if (s_axil_awvalid && !aw_full_q) aw_addr_q <= s_axil_awaddr;
        if (s_axil_wvalid && !w_full_q) begin
            w_data_q <= s_axil_wdata;
            w_strb_q <= s_axil_wstrb;
        end
        if (do_write) bresp_q <= w_ok ? OKAY : SLVERR;
        if (rst_i) begin
            aw_full_q <= 1'b0;
            w_full_q  <= 1'b0;
            bvalid_q  <= 1'b0;
        end else begin
            if (s_axil_awvalid && !aw_full_q) aw_full_q <= 1'b1;
            else if (do_write)                aw_full_q <= 1'b0;
            if (s_axil_wvalid && !w_full_q)   w_full_q  <= 1'b1;
            else if (do_write)                w_full_q  <= 1'b0;
            if (do_write)                     bvalid_q  <= 1'b1;
            else if (s_axil_bready)           bvalid_q  <= 1'b0;
        end
    end
    assign s_axil_awready = !aw_full_q;
    assign s_axil_wready  = !w_full_q;
    assign s_axil_bvalid  = bvalid_q;
    assign s_axil_bresp   = bresp_q;

    // ================================================================ registers
    reg [31:0] lay_k_q, lay_nt_q, lay_kt_q, lay_blk_q;   // LAYER_*: the next layer
    reg [1:0]  irq_en_q;                                  // IRQ_ENABLE
    reg        done_q;                                    // IRQ_STATUS.DONE
    reg [8:0]  err_q;                                     // ERROR
    reg [1:0]  lay_op_q;                                  // LAYER_OP
    reg [3:0]  ucfg_reg_q;                                // UNIT_CFG_ADDR.REG
    reg        ucfg_unit_q;                               // UNIT_CFG_ADDR.UNIT
    reg [15:0] win_h_q, win_w_q;                          // copies of window_engine's H and W (activation beat count)
    reg [31:0] layers_done_q;                             // LAYERS_DONE
    reg [23:0] lay_words_q;                               // weight words: LAYER_N_TILES * LAYER_K (low bits, registered)
    reg [16:0] lay_chans_q;                               // parameter channels: LAYER_N_TILES * COLS (low bits, registered)

    // ================================================================ layer queue
    // Entry 0 runs (when count >= 1), entry 1 waits. A layer computes with bank q_bank.
    reg [1:0]        q_count_q;
    reg [15:0]       q_k_q     [0:1];
    reg [NT_W:0]     q_nt_q    [0:1];
    reg [15:0]       q_kt_q    [0:1];
    reg [23:0]       q_blk_q   [0:1];
    reg              q_bank_q  [0:1];
    reg [1:0]        q_op_q    [0:1];
    reg              load_bank_q;          // bank the weight / parameter streams write
    wire             busy = (q_count_q != 2'd0);
    // queue entries of each op (entry e is valid when e < q_count_q)
    wire             q0_v = (q_count_q != 2'd0), q1_v = (q_count_q == 2'd2);
    wire             win_queued = (q0_v && q_op_q[0] == OP_WIN) || (q1_v && q_op_q[1] == OP_WIN);
    wire             elt_queued = (q0_v && q_op_q[0] == OP_ELT) || (q1_v && q_op_q[1] == OP_ELT);
    // the load bank is not computed with: fewer than two GEMM layers queued (a layer
    // takes the load bank at START, which then flips)
    wire             bank_free = !(q0_v && q1_v && q_op_q[0] == OP_GEMM && q_op_q[1] == OP_GEMM);
    wire [1:0]       r_op = q_op_q[0];                  // op of the running layer
    // where the weight / parameter streams load: LAYER_OP's unit (GEMM without units or for
    // an invalid op, so that a wrong LAYER_OP never hangs a stream)
    wire [1:0]       ld_op = (UNITS == 1 && (lay_op_q == OP_WIN || lay_op_q == OP_ELT)) ? lay_op_q : OP_GEMM;

    // ---------------------------------------------------------------- load streams
    reg [16:0] wgt_cnt_q;     // weight words of the packet being received (saturating)
    reg [16:0] wgt_len_q;     // words of the last packet ended by TLAST
    reg        wgt_done_q;    // a packet was ended by TLAST since the last START
    reg [16:0] prm_cnt_q;     // parameter channels of the packet being received (saturating)
    reg [16:0] prm_len_q;
    reg        prm_done_q;
    reg  [16:0] uw_cnt_q;     // window weight words of the packet being received (saturating)
    reg  [16:0] up_cnt_q;     // unit parameter channels of the packet being received (saturating)
    wire b_phase;             // the running layer is ELTWISE: the weight stream is its operand B
    wire elt_b_ready;
    // weight stream, load side: engine bank (GEMM) or window taps (WINDOW); ELTWISE's
    // weight stream is operand B, taken only while its layer runs
    wire wgt_ld_ready = !b_phase && ((ld_op == OP_GEMM) ? bank_free : (ld_op == OP_WIN) ? !win_queued : 1'b0);
    wire prm_ready    = (ld_op == OP_GEMM) ? bank_free : (ld_op == OP_WIN) ? !win_queued : !elt_queued;
    wire wgt_fire  = s_axis_wgt_tvalid && wgt_ld_ready;          // a load beat
    wire prm_fire  = s_axis_prm_tvalid && prm_ready;
    wire wgt_gfire = wgt_fire && ld_op == OP_GEMM;               // to the engine's load bank
    wire prm_gfire = prm_fire && ld_op == OP_GEMM;
    wire wgt_wfire = wgt_fire && ld_op == OP_WIN;                // to the window unit
    wire prm_ufire = prm_fire && ld_op != OP_GEMM;               // to the window / eltwise unit
    wire wgt_in   = wgt_cnt_q < 17'(W_DEPTH);
    wire prm_in   = prm_cnt_q < N_CHAN;
    wire uw_in    = uw_cnt_q < 17'(TAPS_MAX);
    wire up_in    = up_cnt_q < ((ld_op == OP_WIN) ? 17'(GROUPS_MAX * COLS) : 17'(COLS));
    assign s_axis_wgt_tready = b_phase ? elt_b_ready : wgt_ld_ready;
    assign s_axis_prm_tready = prm_ready;

    // START: queue room, configuration in range, weights and parameters complete.
    wire cfg_gemm = lay_k_q >= 32'd1 && lay_k_q <= 32'd65535
                && lay_nt_q >= 32'd1 && lay_nt_q <= 32'(N_TILES_MAX)
                && lay_kt_q >= 32'd1 && lay_kt_q <= 32'(A_DEPTH)
                && lay_blk_q >= 32'd1 && lay_blk_q <= 32'hFF_FFFF
                && lay_words_q <= 24'(W_DEPTH);       // (the products are exact once K and N_TILES are in range)
    wire op_unit = (UNITS == 1) && (lay_op_q == OP_WIN || lay_op_q == OP_ELT);
    wire cfg_ok_d = (lay_op_q == OP_GEMM) ? cfg_gemm
                  : op_unit && lay_blk_q >= 32'd1 && lay_blk_q <= 32'hFF_FFFF;
    // The range checks are registered (timing: their 32-bit compares are carry chains that
    // otherwise sit in front of the layer queue's write enables, docs/synthesis.md).
    // cfg_ok_q is one cycle behind LAYER_*, which change only through AXI4-Lite writes; the
    // slave takes a write at most every other cycle (do_write clears aw_full_q / w_full_q),
    // so the START of a later write always sees them.
    reg  cfg_ok_q;
    // a unit layer uses the unit's memories as they are: no weight / parameter packet checks
    wire wgt_ok  = op_unit || (wgt_done_q && wgt_cnt_q == 17'd0 && {7'd0, wgt_len_q} == lay_words_q);
    wire prm_ok  = op_unit || (prm_done_q && prm_cnt_q == 17'd0 && prm_len_q == lay_chans_q);
    wire room    = q_count_q != 2'd2;
    wire push    = start && room && cfg_ok_q && wgt_ok && prm_ok;
    wire push_gemm = push && lay_op_q == OP_GEMM;
    // UNIT_CFG_DATA: the addressed unit must have no job queued
    wire ucfg_busy = ucfg_unit_q ? elt_queued : win_queued;
    wire ucfg_we   = w_ucfgd && !ucfg_busy && (UNITS == 1);

    // ---------------------------------------------------------------- load write stage
    // The load streams' writes reach the memories one cycle after their beat (timing: a
    // beat's acceptance depends on the layer queue -- the running layer's op, the free
    // bank -- and the write enables fan out to every lane's LUT RAM and to the block RAMs
    // across the die; docs/synthesis.md). Nothing reads a location that early: a START
    // pushes a layer one cycle after its last beat at the earliest (wgt_done_q /
    // prm_done_q are registered), the delayed write lands at that same edge, and the
    // layer's first read of its weights or parameters comes later still.
    reg                 ld_ew_q, ld_ep_q, ld_uw_q, ld_up_q;   // engine / unit weight / parameter write
    reg                 ld_bank_q;                           // the engine bank they write
    reg  [WA_W-1:0]     ld_ew_addr_q;
    reg  [CH_W-1:0]     ld_ep_chan_q;
    reg  [TW-1:0]       ld_uw_addr_q;
    reg  [URQ_W-1:0]    ld_up_chan_q;
    reg  [COLS*8-1:0]   ld_wdata_q;                          // the weight beat
    reg  [95:0]         ld_pdata_q;                          // the parameter beat's fields
    wire [URQ_W-1:0]    ld_up_chan_d = (ld_op == OP_ELT)
        ? URQ_W'(GROUPS_MAX * COLS) + URQ_W'(up_cnt_q[ECH_W-1:0])
        : URQ_W'(up_cnt_q[WCH_W-1:0]);
    always @(posedge clk_i) begin
        ld_bank_q    <= load_bank_q;
        ld_ew_addr_q <= wgt_cnt_q[WA_W-1:0];
        ld_ep_chan_q <= prm_cnt_q[CH_W-1:0];
        ld_uw_addr_q <= uw_cnt_q[TW-1:0];
        ld_up_chan_q <= ld_up_chan_d;
        ld_wdata_q   <= s_axis_wgt_tdata;
        ld_pdata_q   <= s_axis_prm_tdata[95:0];
        if (rst_i) begin
            ld_ew_q <= 1'b0;
            ld_ep_q <= 1'b0;
            ld_uw_q <= 1'b0;
            ld_up_q <= 1'b0;
        end else begin
            ld_ew_q <= wgt_gfire && wgt_in;
            ld_ep_q <= prm_gfire && prm_in;
            ld_uw_q <= wgt_wfire && uw_in && (UNITS == 1);
            ld_up_q <= prm_ufire && up_in && (UNITS == 1);
        end
    end

    // ---------------------------------------------------------------- running layer
    reg [15:0]   a_k_q;       // activation beat: tap within the block
    reg [23:0]   a_blk_q;     // activation beat: block
    reg          a_done_q;    // all activation beats of the running layer taken
    reg [ROW_W-1:0] o_row_q;  // output beat: row
    reg [NT_W:0] o_tile_q;    // output beat: channel tile
    reg [23:0]   o_blk_q;     // output beat: block
    wire [15:0]  r_k   = q_k_q[0];
    wire [NT_W:0] r_nt = q_nt_q[0];
    wire [23:0]  r_blk = q_blk_q[0];
    wire         eng_act_ready;
    reg  [15:0]  a_y_q;       // activation beat: pixel row within a window tile
    wire         win_in_ready, elt_a_ready;
    wire         act_take  = busy && !a_done_q;
    wire         sel_ready = (r_op == OP_GEMM) ? eng_act_ready : (r_op == OP_WIN) ? win_in_ready : elt_a_ready;
    wire         act_fire  = s_axis_act_tvalid && act_take && sel_ready;
    // beat counters: GEMM a_k = tap, block; WINDOW a_k = x, a_y = y, block = tile; ELTWISE block = beat
    wire         k_end     = (r_op == OP_GEMM) ? (a_k_q == r_k - 16'd1)
                           : (r_op == OP_WIN) ? (a_k_q == win_w_q - 16'd1) : 1'b1;
    wire         y_end     = (r_op != OP_WIN) || (a_y_q == win_h_q - 16'd1);
    wire         act_last  = k_end && y_end && (a_blk_q == r_blk - 24'd1);
    assign       b_phase   = act_take && r_op == OP_ELT;
    wire         eng_out_valid, win_out_valid, elt_out_valid;
    wire         win_out_last;
    wire         out_valid = (r_op == OP_GEMM) ? eng_out_valid : (r_op == OP_WIN) ? win_out_valid : elt_out_valid;
    wire         out_fire  = busy && out_valid && m_axis_out_tready;
    // end of an output block: GEMM a row block's last tile and row; WINDOW a tile's last
    // pixel (the unit's out_last_o); ELTWISE every beat
    wire         o_end     = (r_op == OP_GEMM) ? ((o_row_q == ROW_W'(ROWS - 1)) && (o_tile_q == r_nt - 1'b1))
                           : (r_op == OP_WIN) ? win_out_last : 1'b1;
    wire         out_last  = o_end && (o_blk_q == r_blk - 24'd1);
    wire         pop       = out_fire && out_last;
    wire         array_fire;
    assign s_axis_act_tready = act_take && sel_ready;
    assign m_axis_out_tvalid = busy && out_valid;
    assign m_axis_out_tlast  = busy && out_valid && out_last;
    assign m_axis_out_tkeep  = {COLS{1'b1}};

    // ---------------------------------------------------------------- error flags
    wire [8:0] err_set;
    wire       b_fire = b_phase && s_axis_wgt_tvalid && elt_b_ready;   // joined with act_fire
    assign err_set[ERROR_CFG_INVALID_LSB]    = start && room && !cfg_ok_q;
    assign err_set[ERROR_START_OVERFLOW_LSB] = start && !room;
    assign err_set[ERROR_WGT_LENGTH_LSB]     = start && room && cfg_ok_q && !wgt_ok;
    assign err_set[ERROR_PRM_LENGTH_LSB]     = start && room && cfg_ok_q && !prm_ok;
    assign err_set[ERROR_ACT_TLAST_LSB]      = (act_fire && (s_axis_act_tlast != act_last))
                                            || (b_fire && (s_axis_wgt_tlast != act_last));
    assign err_set[ERROR_TKEEP_LSB]          = (act_fire && !(&s_axis_act_tkeep))
                                            || ((wgt_fire || b_fire) && !(&s_axis_wgt_tkeep))
                                            || (prm_fire && !(&s_axis_prm_tkeep));
    assign err_set[ERROR_UNIT_BUSY_LSB]      = w_ucfgd && ucfg_busy && (UNITS == 1);
    assign err_set[ERROR_WGT_OVERFLOW_LSB]   = (wgt_gfire && !wgt_in) || (wgt_wfire && !uw_in);
    assign err_set[ERROR_PRM_OVERFLOW_LSB]   = (prm_gfire && !prm_in) || (prm_ufire && !up_in);

    integer e;
    always @(posedge clk_i) begin
        // LAYER_* change only through AXI4-Lite writes, at least one cycle before a START
        lay_words_q <= {16'd0, lay_nt_q[7:0]} * {8'd0, lay_k_q[15:0]};
        cfg_ok_q    <= cfg_ok_d;
        lay_chans_q <= {9'd0, lay_nt_q[7:0]} * 17'(COLS);
        if (push) begin
            // a new layer lands in the first free entry (entry 0 if it frees at this edge)
            for (e = 0; e < 2; e = e + 1) begin
                if (e == ((pop ? 32'(q_count_q) - 1 : 32'(q_count_q)))) begin
                    q_k_q[e]    <= lay_k_q[15:0];
                    q_nt_q[e]   <= lay_nt_q[NT_W:0];
                    q_kt_q[e]   <= lay_kt_q[15:0];
                    q_blk_q[e]  <= lay_blk_q[23:0];
                    q_bank_q[e] <= load_bank_q;
                    q_op_q[e]   <= lay_op_q;
                end
            end
        end
        if (pop && !(push && q_count_q == 2'd1)) begin
            q_k_q[0]    <= q_k_q[1];
            q_nt_q[0]   <= q_nt_q[1];
            q_kt_q[0]   <= q_kt_q[1];
            q_blk_q[0]  <= q_blk_q[1];
            q_bank_q[0] <= q_bank_q[1];
            q_op_q[0]   <= q_op_q[1];
        end
        if (rst_i) begin
            lay_k_q       <= REG_LAYER_K_RESET;
            lay_nt_q      <= REG_LAYER_N_TILES_RESET;
            lay_kt_q      <= REG_LAYER_K_TILE_RESET;
            lay_blk_q     <= REG_LAYER_BLOCKS_RESET;
            irq_en_q      <= REG_IRQ_ENABLE_RESET[1:0];
            done_q        <= 1'b0;
            err_q         <= 9'd0;
            lay_op_q      <= REG_LAYER_OP_RESET[1:0];
            ucfg_reg_q    <= REG_UNIT_CFG_ADDR_RESET[3:0];
            ucfg_unit_q   <= REG_UNIT_CFG_ADDR_RESET[8];
            win_h_q       <= 16'd1;                    // window_engine's reset values
            win_w_q       <= 16'd1;
            uw_cnt_q      <= 17'd0;
            up_cnt_q      <= 17'd0;
            a_y_q         <= 16'd0;
            layers_done_q <= 32'd0;
            q_count_q     <= 2'd0;
            q_op_q[0]     <= OP_GEMM;                  // the output mux is defined after reset
            q_op_q[1]     <= OP_GEMM;
            load_bank_q   <= 1'b0;
            wgt_cnt_q     <= 17'd0;
            wgt_len_q     <= 17'd0;
            wgt_done_q    <= 1'b0;
            prm_cnt_q     <= 17'd0;
            prm_len_q     <= 17'd0;
            prm_done_q    <= 1'b0;
            a_k_q         <= 16'd0;
            a_blk_q       <= 24'd0;
            a_done_q      <= 1'b0;
            o_row_q       <= {ROW_W{1'b0}};
            o_tile_q      <= {(NT_W+1){1'b0}};
            o_blk_q       <= 24'd0;
        end else begin
            if (w_lk)   lay_k_q   <= merge(lay_k_q, w_data_q, wmask);
            if (w_lnt)  lay_nt_q  <= merge(lay_nt_q, w_data_q, wmask);
            if (w_lkt)  lay_kt_q  <= merge(lay_kt_q, w_data_q, wmask);
            if (w_lb)   lay_blk_q <= merge(lay_blk_q, w_data_q, wmask);
            if (w_irqe) irq_en_q  <= (irq_en_q & ~wmask[1:0]) | (w_data_q[1:0] & wmask[1:0]);
            if (pop)                                done_q <= 1'b1;
            else if (w_irqs && wbits[IRQ_STATUS_DONE_LSB]) done_q <= 1'b0;
            err_q <= (err_q & ~(w_err ? wbits[8:0] : 9'd0)) | err_set;
            if (w_lop)   lay_op_q <= (lay_op_q & ~wmask[1:0]) | (w_data_q[1:0] & wmask[1:0]);
            if (w_ucfga) begin
                if (w_strb_q[0]) ucfg_reg_q  <= w_data_q[3:0];
                if (w_strb_q[1]) ucfg_unit_q <= w_data_q[8];
            end
            if (ucfg_we && !ucfg_unit_q && ucfg_reg_q == 4'd0) win_h_q <= w_data_q[15:0];
            if (ucfg_we && !ucfg_unit_q && ucfg_reg_q == 4'd1) win_w_q <= w_data_q[15:0];
            if (pop) layers_done_q <= layers_done_q + 32'd1;
            q_count_q <= q_count_q + {1'b0, push} - {1'b0, pop};
            if (push_gemm) load_bank_q <= !load_bank_q;
            // weight stream: words of the load bank, TLAST ends the packet; a unit layer's
            // START leaves a GEMM layer loaded before it waiting for its own START
            if (push_gemm) begin
                wgt_done_q <= 1'b0;
                prm_done_q <= 1'b0;
            end
            if (wgt_wfire) uw_cnt_q <= s_axis_wgt_tlast ? 17'd0 : (uw_cnt_q == 17'h1FFFF) ? uw_cnt_q : uw_cnt_q + 17'd1;
            if (prm_ufire) up_cnt_q <= s_axis_prm_tlast ? 17'd0 : (up_cnt_q == 17'h1FFFF) ? up_cnt_q : up_cnt_q + 17'd1;
            if (wgt_gfire) begin
                if (s_axis_wgt_tlast) begin
                    wgt_cnt_q  <= 17'd0;
                    wgt_len_q  <= (wgt_cnt_q == 17'h1FFFF) ? wgt_cnt_q : wgt_cnt_q + 17'd1;
                    wgt_done_q <= 1'b1;
                end else if (wgt_cnt_q != 17'h1FFFF) begin
                    wgt_cnt_q <= wgt_cnt_q + 17'd1;
                end
            end
            if (prm_gfire) begin
                if (s_axis_prm_tlast) begin
                    prm_cnt_q  <= 17'd0;
                    prm_len_q  <= (prm_cnt_q == 17'h1FFFF) ? prm_cnt_q : prm_cnt_q + 17'd1;
                    prm_done_q <= 1'b1;
                end else if (prm_cnt_q != 17'h1FFFF) begin
                    prm_cnt_q <= prm_cnt_q + 17'd1;
                end
            end
            // running layer: activation and output beat counters
            if (act_fire) begin
                if (!k_end) begin
                    a_k_q <= a_k_q + 16'd1;
                end else if (!y_end) begin
                    a_k_q <= 16'd0;
                    a_y_q <= a_y_q + 16'd1;
                end else begin
                    a_k_q   <= 16'd0;
                    a_y_q   <= 16'd0;
                    a_blk_q <= a_blk_q + 24'd1;
                    if (a_blk_q == r_blk - 24'd1) a_done_q <= 1'b1;
                end
            end
            if (out_fire && r_op != OP_GEMM) begin
                if (o_end) o_blk_q <= o_blk_q + 24'd1;
            end else if (out_fire) begin
                if (o_row_q != ROW_W'(ROWS - 1)) begin
                    o_row_q <= o_row_q + 1'b1;
                end else begin
                    o_row_q <= {ROW_W{1'b0}};
                    if (o_tile_q != r_nt - 1'b1) begin
                        o_tile_q <= o_tile_q + 1'b1;
                    end else begin
                        o_tile_q <= {(NT_W+1){1'b0}};
                        o_blk_q  <= o_blk_q + 24'd1;
                    end
                end
            end
            if (pop) begin                    // the next layer starts from scratch
                a_k_q    <= 16'd0;
                a_y_q    <= 16'd0;
                a_blk_q  <= 24'd0;
                a_done_q <= 1'b0;
                o_row_q  <= {ROW_W{1'b0}};
                o_tile_q <= {(NT_W+1){1'b0}};
                o_blk_q  <= 24'd0;
            end
        end
    end
    assign irq_o = (done_q && irq_en_q[IRQ_ENABLE_DONE_LSB])
                || ((|err_q) && irq_en_q[IRQ_ENABLE_ERROR_LSB]);

    // ---------------------------------------------------------------- performance counters
    reg [31:0] pc_cycles_q, pc_array_q, pc_act_q, pc_wgt_q, pc_prm_q, pc_out_q, pc_load_q;
    always @(posedge clk_i) begin
        if (rst_i || clr_perf) begin
            pc_cycles_q <= 32'd0;
            pc_array_q  <= 32'd0;
            pc_act_q    <= 32'd0;
            pc_wgt_q    <= 32'd0;
            pc_prm_q    <= 32'd0;
            pc_out_q    <= 32'd0;
            pc_load_q   <= 32'd0;
        end else begin
            pc_cycles_q <= pc_cycles_q + {31'd0, busy};
            pc_array_q  <= pc_array_q + {31'd0, array_fire};
            pc_act_q    <= pc_act_q + {31'd0, s_axis_act_tvalid && !s_axis_act_tready};
            pc_wgt_q    <= pc_wgt_q + {31'd0, s_axis_wgt_tvalid && !s_axis_wgt_tready};
            pc_prm_q    <= pc_prm_q + {31'd0, s_axis_prm_tvalid && !s_axis_prm_tready};
            pc_out_q    <= pc_out_q + {31'd0, m_axis_out_tvalid && !m_axis_out_tready};
            pc_load_q   <= pc_load_q + {31'd0, !busy && (s_axis_wgt_tvalid || s_axis_prm_tvalid)};
        end
    end

    // ---------------------------------------------------------------- read mux
    reg [31:0] rd;
    reg        rd_ok;
    always @* begin
        rd_ok = 1'b1;
        case (ra)
            REG_ID:            rd = REG_ID_RESET;
            REG_HW_ARRAY:      rd = {7'd0, UNITS == 1, 8'(N_TILES_MAX), 8'(COLS), 8'(ROWS)};
            REG_HW_WINDOW:     rd = (UNITS == 1) ? {8'd0, 4'(WL2), 4'(HL2), 8'(GROUPS_MAX), 8'(TAPS_MAX)} : 32'd0;
            REG_LAYER_OP:      rd = {30'd0, lay_op_q};
            REG_UNIT_CFG_ADDR: rd = {23'd0, ucfg_unit_q, 4'd0, ucfg_reg_q};
            REG_UNIT_CFG_DATA: rd = 32'd0;
            REG_HW_A_DEPTH:    rd = 32'(A_DEPTH);
            REG_HW_W_DEPTH:    rd = 32'(W_DEPTH);
            REG_CTRL:          rd = 32'd0;
            REG_STATUS:        rd = {(wgt_cnt_q > 17'hFFFF) ? 16'hFFFF : wgt_cnt_q[15:0], 13'd0,
                                     load_bank_q, q_count_q == 2'd2, busy};
            REG_IRQ_STATUS:    rd = {30'd0, |err_q, done_q};
            REG_IRQ_ENABLE:    rd = {30'd0, irq_en_q};
            REG_ERROR:         rd = {23'd0, err_q};
            REG_LAYER_K:       rd = lay_k_q;
            REG_LAYER_N_TILES: rd = lay_nt_q;
            REG_LAYER_K_TILE:  rd = lay_kt_q;
            REG_LAYER_BLOCKS:  rd = lay_blk_q;
            REG_LAYERS_DONE:   rd = layers_done_q;
            REG_PERF_CYCLES:   rd = pc_cycles_q;
            REG_PERF_ARRAY_BUSY: rd = pc_array_q;
            REG_PERF_ACT_STALL:  rd = pc_act_q;
            REG_PERF_WGT_STALL:  rd = pc_wgt_q;
            REG_PERF_PRM_STALL:  rd = pc_prm_q;
            REG_PERF_OUT_STALL:  rd = pc_out_q;
            REG_PERF_LOAD_EXPOSED: rd = pc_load_q;
            default: begin
                rd    = 32'd0;
                rd_ok = 1'b0;
            end
        endcase
    end
    always @(posedge clk_i) begin
        if (do_read) begin
            rdata_q <= rd;
            rresp_q <= rd_ok ? OKAY : SLVERR;
        end
        if (rst_i) begin
            rvalid_q <= 1'b0;
        end else if (do_read) begin
            rvalid_q <= 1'b1;
        end else if (s_axil_rready) begin
            rvalid_q <= 1'b0;
        end
    end
    assign s_axil_arready = !rvalid_q;
    assign s_axil_rvalid  = rvalid_q;
    assign s_axil_rdata   = rdata_q;
    assign s_axil_rresp   = rresp_q;

    // ================================================================ the engine
    wire [COLS*8-1:0] eng_out_data;
    /* verilator lint_off UNUSEDSIGNAL */  // the top counts rows itself; the engine's tile-end flag is not needed
    wire              eng_out_last;
    /* verilator lint_on UNUSEDSIGNAL */
    qlayer_engine #(.ROWS(ROWS), .COLS(COLS), .A_DEPTH(A_DEPTH), .W_DEPTH(W_DEPTH),
                    .N_TILES_MAX(N_TILES_MAX)) u_engine (
        .clk_i         (clk_i),
        .rst_i         (rst_i),
        .k_i           (r_k),
        .n_tiles_i     (r_nt),
        .k_tile_i      (q_kt_q[0]),
        .bank_i        (q_bank_q[0]),
        .w_we_i        (ld_ew_q),
        .w_bank_i      (ld_bank_q),
        .w_addr_i      (ld_ew_addr_q),
        .w_data_i      (ld_wdata_q),
        .prm_we_i      (ld_ep_q),
        .prm_bank_i    (ld_bank_q),
        .prm_chan_i    (ld_ep_chan_q),
        .prm_bias_i    (ld_pdata_q[PRM_BIAS_MSB:PRM_BIAS_LSB]),
        .prm_m0_i      (ld_pdata_q[PRM_M0_MSB:PRM_M0_LSB]),
        .prm_shift_i   (ld_pdata_q[PRM_SHIFT_MSB:PRM_SHIFT_LSB]),
        .prm_zp_i      (ld_pdata_q[PRM_ZP_MSB:PRM_ZP_LSB]),
        .prm_act_min_i (ld_pdata_q[PRM_ACT_MIN_MSB:PRM_ACT_MIN_LSB]),
        .prm_act_max_i (ld_pdata_q[PRM_ACT_MAX_MSB:PRM_ACT_MAX_LSB]),
        .act_valid_i   (s_axis_act_tvalid && act_take && r_op == OP_GEMM),
        .act_ready_o   (eng_act_ready),
        .act_data_i    (s_axis_act_tdata),
        .out_valid_o   (eng_out_valid),
        .out_ready_i   (m_axis_out_tready && busy && r_op == OP_GEMM),
        .out_data_o    (eng_out_data),
        .out_last_o    (eng_out_last),
        .array_fire_o  (array_fire)
    );
    // ================================================================ the units
    wire [COLS*8-1:0] win_out_data, elt_out_data;
    generate
        if (UNITS == 1) begin : g_units
            // The units never run at the same time (every layer goes through the queue, and
            // the next layer's beats enter only after the last output of the running one), so
            // they share one requantize pipeline (REQUANT = 0; docs/top.md): tiles
            // 0..GROUPS_MAX-1 are the window unit's channel groups, tile GROUPS_MAX holds the
            // element-wise unit's COLS lanes of output-rescale parameters.
            wire                 win_rq_valid, elt_rq_valid, rq_in_ready;
            wire [GW-1:0]        win_rq_tile;
            wire [32*COLS-1:0]   win_rq_data, elt_rq_data;
            wire                 win_rq_last, elt_rq_last;
            wire                 rq_out_valid, rq_out_last;
            wire [COLS*8-1:0]    rq_out_data;
            /* verilator lint_off UNUSEDSIGNAL */  // REQUANT = 0: the units' own outputs are zero
            wire                 win_own_valid, win_own_last, elt_own_valid, elt_own_last;
            wire [COLS*8-1:0]    win_own_data, elt_own_data;
            /* verilator lint_on UNUSEDSIGNAL */
            window_engine #(.LANES(COLS), .H_MAX(H_MAX), .W_MAX(W_MAX), .TAPS_MAX(TAPS_MAX),
                            .GROUPS_MAX(GROUPS_MAX), .REQUANT(0)) u_window (
                .clk_i         (clk_i),
                .rst_i         (rst_i),
                .cfg_we_i      (ucfg_we && !ucfg_unit_q),
                .cfg_addr_i    (ucfg_reg_q),
                .cfg_wdata_i   (w_data_q[15:0]),
                .w_we_i        (ld_uw_q),
                .w_addr_i      (ld_uw_addr_q),
                .w_data_i      (ld_wdata_q),
                .prm_we_i      (1'b0),
                .prm_chan_i    ({WCH_W{1'b0}}),
                .prm_bias_i    (32'sd0),
                .prm_m0_i      (32'sd0),
                .prm_shift_i   (6'sd0),
                .prm_zp_i      (8'sd0),
                .prm_act_min_i (8'sd0),
                .prm_act_max_i (8'sd0),
                .in_valid_i    (s_axis_act_tvalid && act_take && r_op == OP_WIN),
                .in_ready_o    (win_in_ready),
                .in_data_i     (s_axis_act_tdata[COLS*8-1:0]),
                .out_valid_o   (win_own_valid),
                .out_ready_i   (1'b0),
                .out_data_o    (win_own_data),
                .out_last_o    (win_own_last),
                .rq_valid_o    (win_rq_valid),
                .rq_ready_i    (rq_in_ready && r_op == OP_WIN),
                .rq_tile_o     (win_rq_tile),
                .rq_data_o     (win_rq_data),
                .rq_last_o     (win_rq_last)
            );
            eltwise_engine #(.LANES(COLS), .REQUANT(0)) u_eltwise (
                .clk_i         (clk_i),
                .rst_i         (rst_i),
                .cfg_we_i      (ucfg_we && ucfg_unit_q),
                .cfg_addr_i    (ucfg_reg_q[2:0]),
                .cfg_wdata_i   (w_data_q),
                .prm_we_i      (1'b0),
                .prm_chan_i    ({ECH_W{1'b0}}),
                .prm_bias_i    (32'sd0),
                .prm_m0_i      (32'sd0),
                .prm_shift_i   (6'sd0),
                .prm_zp_i      (8'sd0),
                .prm_act_min_i (8'sd0),
                .prm_act_max_i (8'sd0),
                .a_valid_i     (s_axis_act_tvalid && act_take && r_op == OP_ELT),
                .a_ready_o     (elt_a_ready),
                .a_data_i      (s_axis_act_tdata[COLS*8-1:0]),
                .a_last_i      (act_last),
                .b_valid_i     (s_axis_wgt_tvalid && b_phase),
                .b_ready_o     (elt_b_ready),
                .b_data_i      (s_axis_wgt_tdata),
                .out_valid_o   (elt_own_valid),
                .out_ready_i   (1'b0),
                .out_data_o    (elt_own_data),
                .out_last_o    (elt_own_last),
                .rq_valid_o    (elt_rq_valid),
                .rq_ready_i    (rq_in_ready && r_op == OP_ELT),
                .rq_data_o     (elt_rq_data),
                .rq_last_o     (elt_rq_last)
            );
            // the running layer's unit feeds the pipeline (the other one has nothing in flight)
            wire rq_win = (r_op == OP_WIN);
            requant_pipeline #(.LANES(COLS), .CHANNELS((GROUPS_MAX + 1) * COLS), .USER_W(1)) u_unit_requant (
                .clk_i         (clk_i),
                .rst_i         (rst_i),
                .prm_we_i      (ld_up_q),
                .prm_chan_i    (ld_up_chan_q),
                .prm_bias_i    (ld_pdata_q[PRM_BIAS_MSB:PRM_BIAS_LSB]),
                .prm_m0_i      (ld_pdata_q[PRM_M0_MSB:PRM_M0_LSB]),
                .prm_shift_i   (ld_pdata_q[PRM_SHIFT_MSB:PRM_SHIFT_LSB]),
                .prm_zp_i      (ld_pdata_q[PRM_ZP_MSB:PRM_ZP_LSB]),
                .prm_act_min_i (ld_pdata_q[PRM_ACT_MIN_MSB:PRM_ACT_MIN_LSB]),
                .prm_act_max_i (ld_pdata_q[PRM_ACT_MAX_MSB:PRM_ACT_MAX_LSB]),
                .in_valid_i    (rq_win ? win_rq_valid : (elt_rq_valid && r_op == OP_ELT)),
                .in_ready_o    (rq_in_ready),
                .in_tile_i     (rq_win ? UT_W'(win_rq_tile) : UT_W'(GROUPS_MAX)),
                .in_data_i     (rq_win ? win_rq_data : elt_rq_data),
                .in_user_i     (rq_win ? win_rq_last : elt_rq_last),
                .out_valid_o   (rq_out_valid),
                .out_ready_i   (m_axis_out_tready && busy && (r_op == OP_WIN || r_op == OP_ELT)),
                .out_data_o    (rq_out_data),
                .out_user_o    (rq_out_last)
            );
            assign win_out_valid = rq_out_valid;
            assign win_out_last  = rq_out_last;
            assign win_out_data  = rq_out_data;
            assign elt_out_valid = rq_out_valid;
            assign elt_out_data  = rq_out_data;
        end else begin : g_no_units
            assign win_in_ready  = 1'b0;
            assign win_out_valid = 1'b0;
            assign win_out_last  = 1'b0;
            assign win_out_data  = {COLS*8{1'b0}};
            assign elt_a_ready   = 1'b0;
            assign elt_b_ready   = 1'b0;
            assign elt_out_valid = 1'b0;
            assign elt_out_data  = {COLS*8{1'b0}};
        end
    endgenerate
    assign m_axis_out_tdata = (r_op == OP_WIN) ? win_out_data : (r_op == OP_ELT) ? elt_out_data : eng_out_data;
    // parameter beat bits outside the fields (reserved, ignored)
    wire unused_prm = &{1'b0, s_axis_prm_tdata[127:96], ld_pdata_q[71:70]};
endmodule
`default_nettype wire
