`default_nettype none
// eltwise_engine -- TFLite int8 ADD / SUB / MUL on two streamed operands, LANES elements
// per beat (the role NVDLA's SDP plays): a residual block's sum never returns to the host.
//
//   ADD / SUB: y = clamp(zp_out + MBQM(MBQM((a - zp_a) << 20, m_a, s_a)
//                                      +- MBQM((b - zp_b) << 20, m_b, s_b), m_out, s_out))
//   MUL:       y = clamp(zp_out + MBQM((a - zp_a) * (b - zp_b), m_out, s_out))
//
// (MBQM = MultiplyByQuantizedMultiplier, gemmlowp double rounding.) eltwise_lane computes
// everything up to the output rescale (its stages 1-7); the output rescale, zero point
// and clamp are requant_pipeline's (bias 0), whose parameter memory holds LANES copies of
// {0, m_out, s_out, zp_out, act_min, act_max} (the host writes channel l = 0..LANES-1).
// docs/arithmetic.md section 10 has the stage table.
//
// Streams (valid/ready, AXI-Stream semantics): operand beats a and b are joined -- a pair
// transfers when both are valid and the unit has room (a_ready_o = b_valid_i && room,
// b_ready_o = a_valid_i && room); a_last_i travels to out_last_o. The datapath never
// stalls: a pair is admitted only while the pairs in flight plus those in the RES_FIFO
// result FIFO are fewer than RES_FIFO (credits); RES_FIFO >= 8 gives one beat per cycle.
//
// Configuration (cfg_*; change only while idle): 0 OP (0 ADD, 1 SUB, 2 MUL), 1 ZP_A,
// 2 ZP_B (int8), 3 M_A, 4 SHIFT_A, 5 M_B, 6 SHIFT_B (input multipliers, shift -31..0).
// synth-uses: requant_*.v
module eltwise_engine #(
    parameter integer LANES    = 8,    // elements per beat, >= 1
    parameter integer RES_FIFO = 8,    // result FIFO entries (pairs in flight), 2..255
    parameter integer REQUANT  = 1,    // 1: requant_pipeline inside; 0: the caller's (rq_* ports, docs/top.md)
    // derived widths (do not override)
    parameter integer CH_W = (LANES > 1) ? $clog2(LANES) : 1   // prm_chan_i width
) (
    input  wire                 clk_i,          // clock, rising edge
    input  wire                 rst_i,          // synchronous reset, active high (drops pairs in flight)
    // configuration registers
    input  wire                 cfg_we_i,       // write cfg_wdata_i to register cfg_addr_i
    input  wire [2:0]           cfg_addr_i,     // register address (see the header)
    input  wire [31:0]          cfg_wdata_i,    // register value (low bits used)
    // output requantize parameters (passed to requant_pipeline; write LANES equal copies)
    input  wire                 prm_we_i,       // write one lane's parameters
    input  wire [CH_W-1:0]      prm_chan_i,     // lane 0 .. LANES-1
    input  wire signed [31:0]   prm_bias_i,     // 0 for ADD / SUB / MUL
    input  wire signed [31:0]   prm_m0_i,       // output multiplier m0
    input  wire signed [5:0]    prm_shift_i,    // output shift, -31..30
    input  wire signed [7:0]    prm_zp_i,       // int8 output zero point
    input  wire signed [7:0]    prm_act_min_i,  // int8 clamp lower bound (fused activation)
    input  wire signed [7:0]    prm_act_max_i,  // int8 clamp upper bound
    // operand 1 stream
    input  wire                 a_valid_i,      // beat valid
    output wire                 a_ready_o,      // beat accepted (with a b beat)
    input  wire [LANES*8-1:0]   a_data_i,       // LANES int8 elements, element l in bits [8*l +: 8]
    input  wire                 a_last_i,       // last beat of the tensor (to out_last_o)
    // operand 2 stream
    input  wire                 b_valid_i,      // beat valid
    output wire                 b_ready_o,      // beat accepted (with an a beat)
    input  wire [LANES*8-1:0]   b_data_i,       // LANES int8 elements
    // result stream
    output wire                 out_valid_o,    // beat valid
    input  wire                 out_ready_i,    // beat accepted
    output wire [LANES*8-1:0]   out_data_o,     // LANES int8 results
    output wire                 out_last_o,     // the a beat's a_last_i
    // REQUANT = 0: the results before the output rescale, for the caller's requant_pipeline
    // (bias 0; prm_* and out_* are then unused / zero); REQUANT = 1: rq_ready_i unused, rq_* zero
    output wire                 rq_valid_o,     // beat valid
    input  wire                 rq_ready_i,     // beat accepted (the pipeline's in_ready_o)
    output wire [32*LANES-1:0]  rq_data_o,      // lane l int32 eltwise_combine result in bits [32*l +: 32]
    output wire                 rq_last_o       // the a beat's a_last_i (the pipeline's user bit)
);
    generate
        if (LANES < 1 || RES_FIFO < 2 || RES_FIFO > 255 || (1 << CH_W) < LANES
            || (REQUANT != 0 && REQUANT != 1)) begin : g_bad_params
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "eltwise_engine: LANES = %0d, RES_FIFO = %0d, REQUANT = %0d: need LANES >= 1, 2 <= RES_FIFO <= 255, REQUANT 0 or 1, CH_W at its default",
                           LANES, RES_FIFO, REQUANT);
`else
            $error("eltwise_engine: LANES = %0d, RES_FIFO = %0d, REQUANT = %0d: need LANES >= 1, 2 <= RES_FIFO <= 255, REQUANT 0 or 1, CH_W at its default",
                   LANES, RES_FIFO, REQUANT);
`endif
        end
    endgenerate

    localparam integer LAT  = 7;                       // eltwise_lane register stages
    localparam integer FQ_W = $clog2(RES_FIFO + 1);    // pairs-in-flight counter width

    // ---------------------------------------------------------------- configuration
    reg [1:0]         op_q;
    reg signed [7:0]  zp_a_q, zp_b_q;
    reg signed [31:0] m_a_q, m_b_q;
    reg [4:0]         e_a_q, e_b_q;       // right shifts -SHIFT_A, -SHIFT_B
    wire [5:0]        neg_shift_d = 6'd0 - cfg_wdata_i[5:0];
    always @(posedge clk_i) begin
        if (rst_i) begin
            op_q <= 2'd0; zp_a_q <= 8'sd0; zp_b_q <= 8'sd0;
            m_a_q <= 32'sd0; m_b_q <= 32'sd0; e_a_q <= 5'd0; e_b_q <= 5'd0;
        end else if (cfg_we_i) begin
            case (cfg_addr_i)
                3'd0: op_q   <= cfg_wdata_i[1:0];
                3'd1: zp_a_q <= $signed(cfg_wdata_i[7:0]);
                3'd2: zp_b_q <= $signed(cfg_wdata_i[7:0]);
                3'd3: m_a_q  <= $signed(cfg_wdata_i);
                3'd4: e_a_q  <= neg_shift_d[4:0];
                3'd5: m_b_q  <= $signed(cfg_wdata_i);
                3'd6: e_b_q  <= neg_shift_d[4:0];
                default: ;
            endcase
        end
    end
    // only the low bits of a register write are used
    wire unused_cfg = &{1'b0, neg_shift_d[5]};

    // ---------------------------------------------------------------- join and credits
    reg  [FQ_W-1:0] inflight_q;
    wire            rf_pop;
    wire            room   = ({{(32-FQ_W){1'b0}}, inflight_q} < RES_FIFO);
    wire            accept = a_valid_i && b_valid_i && room;
    assign a_ready_o = b_valid_i && room;
    assign b_ready_o = a_valid_i && room;

    reg [LAT-1:0] v_q;                    // valid of stages 1..7
    reg [LAT-1:0] last_q;                 // a_last_i beside the data
    always @(posedge clk_i) begin
        last_q <= {last_q[LAT-2:0], a_last_i};
        if (rst_i) begin
            inflight_q <= {FQ_W{1'b0}};
            v_q        <= {LAT{1'b0}};
        end else begin
            inflight_q <= inflight_q + {{(FQ_W-1){1'b0}}, accept} - {{(FQ_W-1){1'b0}}, rf_pop};
            v_q        <= {v_q[LAT-2:0], accept};
        end
    end

    // ---------------------------------------------------------------- lanes
    wire [32*LANES-1:0] comb_all;
    genvar l;
    generate
        for (l = 0; l < LANES; l = l + 1) begin : g_lane
            eltwise_lane u_lane (
                .clk_i    (clk_i),
                .op_i     (op_q),
                .a_i      (a_data_i[8*l +: 8]),
                .b_i      (b_data_i[8*l +: 8]),
                .zp_a_i   (zp_a_q),
                .zp_b_i   (zp_b_q),
                .m_a_i    (m_a_q),
                .e_a_i    (e_a_q),
                .m_b_i    (m_b_q),
                .e_b_i    (e_b_q),
                .combine_o(comb_all[32*l +: 32])
            );
        end
    endgenerate

    // ---------------------------------------------------------------- result FIFO
    wire              rf_valid;
    wire [32*LANES:0] rf_rdata;
    wire              rq_ready;
    requant_out_fifo #(.WIDTH(32 * LANES + 1), .DEPTH(RES_FIFO)) u_res_fifo (
        .clk_i  (clk_i),
        .rst_i  (rst_i),
        .push_i (v_q[LAT-1]),
        .wdata_i({last_q[LAT-1], comb_all}),
        .valid_o(rf_valid),
        .ready_i(rq_ready),
        .rdata_o(rf_rdata)
    );
    assign rf_pop = rf_valid && rq_ready;

    // ---------------------------------------------------------------- output rescale
    generate
        if (REQUANT == 1) begin : g_requant
            requant_pipeline #(.LANES(LANES), .CHANNELS(LANES), .USER_W(1)) u_requant (
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
                .in_tile_i     (1'b0),
                .in_data_i     (rf_rdata[32*LANES-1:0]),
                .in_user_i     (rf_rdata[32*LANES]),
                .out_valid_o   (out_valid_o),
                .out_ready_i   (out_ready_i),
                .out_data_o    (out_data_o),
                .out_user_o    (out_last_o)
            );
            assign rq_valid_o = 1'b0;
            assign rq_data_o  = {(32*LANES){1'b0}};
            assign rq_last_o  = 1'b0;
            wire unused_rq = &{1'b0, rq_ready_i};
        end else begin : g_ext_requant
            // the caller rescales (qmac_top shares one pipeline between the units)
            assign rq_valid_o  = rf_valid;
            assign rq_ready    = rq_ready_i;
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
    always @(posedge clk_i) begin
        if (!rst_i && cfg_we_i && cfg_addr_i == 3'd0 && cfg_wdata_i > 32'd2)
            $error("eltwise_engine: OP = %0d is not 0 (ADD), 1 (SUB) or 2 (MUL)", cfg_wdata_i);
        if (!rst_i && cfg_we_i && (cfg_addr_i == 3'd4 || cfg_addr_i == 3'd6)
            && ($signed(cfg_wdata_i) > 0 || $signed(cfg_wdata_i) < -31))
            $error("eltwise_engine: input shift %0d is outside -31..0", $signed(cfg_wdata_i));
        if (!rst_i && cfg_we_i && cfg_addr_i == 3'd7)
            $error("eltwise_engine: cfg_addr_i = 7 is not a register");
    end
`endif
endmodule
`default_nettype wire
