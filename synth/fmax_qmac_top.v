// fmax_qmac_top: place-and-route harness for an Fmax estimate of qmac_top on an iCE40
// (not part of the design; synth/fpga.py).
//
// The top has far more ports than the device has pins, so every input comes from a
// shift register loaded through one pin and the outputs are XOR-reduced into one pin.
// Every path inside qmac_top stays register-to-register, as in the real design.
`default_nettype none

module fmax_qmac_top #(
    parameter integer ROWS        = 2,    // passed to qmac_top
    parameter integer COLS        = 1,    // passed to qmac_top
    parameter integer A_DEPTH     = 16,   // passed to qmac_top
    parameter integer W_DEPTH     = 256,  // passed to qmac_top
    parameter integer N_TILES_MAX = 2     // passed to qmac_top
) (
    input  wire clk_i,      // clock
    input  wire rst_i,      // synchronous reset
    input  wire sin_i,      // serial input feeding the input shift register
    output wire sout_o      // XOR of every output bit of the top
);
    // AXI4-Lite: 8+3+1 + 32+4+1 + 1 + 8+3+1 + 1 = 63; streams: act 9*ROWS+2, wgt 9*COLS+2,
    // prm 144+2, out tready 1
    localparam integer AL_W = 63;
    localparam integer IN_W = AL_W + 9 * ROWS + 2 + 9 * COLS + 2 + 146 + 1;

    reg [IN_W-1:0] sh_q;
    always @(posedge clk_i) sh_q <= {sh_q[IN_W-2:0], sin_i};

    localparam integer A0 = AL_W;                  // act stream fields
    localparam integer W0 = A0 + 9 * ROWS + 2;     // weight stream fields
    localparam integer P0 = W0 + 9 * COLS + 2;     // parameter stream fields
    localparam integer O0 = P0 + 146;              // out tready

    wire        irq, awready, wready, bvalid, arready, rvalid;
    wire [1:0]  bresp, rresp;
    wire [31:0] rdata;
    wire        act_tready, wgt_tready, prm_tready, out_tvalid, out_tlast;
    wire [COLS*8-1:0] out_tdata;
    wire [COLS-1:0]   out_tkeep;
    reg         sout_q;

    // UNITS = 0: the window / eltwise units need ROWS == COLS and do not fit an UP5K
    qmac_top #(.ROWS(ROWS), .COLS(COLS), .A_DEPTH(A_DEPTH), .W_DEPTH(W_DEPTH),
               .N_TILES_MAX(N_TILES_MAX), .UNITS(0)) u_dut (
        .clk_i             (clk_i),
        .rst_i             (rst_i),
        .irq_o             (irq),
        .s_axil_awaddr     (sh_q[0 +: 8]),
        .s_axil_awprot     (sh_q[8 +: 3]),
        .s_axil_awvalid    (sh_q[11]),
        .s_axil_awready    (awready),
        .s_axil_wdata      (sh_q[12 +: 32]),
        .s_axil_wstrb      (sh_q[44 +: 4]),
        .s_axil_wvalid     (sh_q[48]),
        .s_axil_wready     (wready),
        .s_axil_bresp      (bresp),
        .s_axil_bvalid     (bvalid),
        .s_axil_bready     (sh_q[49]),
        .s_axil_araddr     (sh_q[50 +: 8]),
        .s_axil_arprot     (sh_q[58 +: 3]),
        .s_axil_arvalid    (sh_q[61]),
        .s_axil_arready    (arready),
        .s_axil_rdata      (rdata),
        .s_axil_rresp      (rresp),
        .s_axil_rvalid     (rvalid),
        .s_axil_rready     (sh_q[62]),
        .s_axis_act_tdata  (sh_q[A0 +: 8 * ROWS]),
        .s_axis_act_tkeep  (sh_q[A0 + 8 * ROWS +: ROWS]),
        .s_axis_act_tvalid (sh_q[A0 + 9 * ROWS]),
        .s_axis_act_tready (act_tready),
        .s_axis_act_tlast  (sh_q[A0 + 9 * ROWS + 1]),
        .s_axis_wgt_tdata  (sh_q[W0 +: 8 * COLS]),
        .s_axis_wgt_tkeep  (sh_q[W0 + 8 * COLS +: COLS]),
        .s_axis_wgt_tvalid (sh_q[W0 + 9 * COLS]),
        .s_axis_wgt_tready (wgt_tready),
        .s_axis_wgt_tlast  (sh_q[W0 + 9 * COLS + 1]),
        .s_axis_prm_tdata  (sh_q[P0 +: 128]),
        .s_axis_prm_tkeep  (sh_q[P0 + 128 +: 16]),
        .s_axis_prm_tvalid (sh_q[P0 + 144]),
        .s_axis_prm_tready (prm_tready),
        .s_axis_prm_tlast  (sh_q[P0 + 145]),
        .m_axis_out_tdata  (out_tdata),
        .m_axis_out_tkeep  (out_tkeep),
        .m_axis_out_tvalid (out_tvalid),
        .m_axis_out_tready (sh_q[O0]),
        .m_axis_out_tlast  (out_tlast)
    );

    always @(posedge clk_i) sout_q <= ^{irq, awready, wready, bvalid, arready, rvalid, bresp, rresp,
                                        rdata, act_tready, wgt_tready, prm_tready, out_tvalid,
                                        out_tlast, out_tdata, out_tkeep};
    assign sout_o = sout_q;
endmodule

`default_nettype wire
