// fmax_requant_pipeline: place-and-route harness for an Fmax estimate of
// requant_pipeline on an iCE40 UP5K (not part of the design).
//
// The block has far more ports than the device has pins, so every input comes from a
// shift register loaded through one pin and the outputs are XOR-reduced to one pin.
// Every path inside requant_pipeline stays register-to-register, as in the real design.
`default_nettype none

module fmax_requant_pipeline #(
    parameter integer LANES    = 8,     // passed to requant_pipeline (its default)
    parameter integer CHANNELS = 64,    // passed to requant_pipeline (its default)
    parameter integer USER_W   = 1      // passed to requant_pipeline
) (
    input  wire clk_i,      // clock
    input  wire rst_i,      // synchronous reset
    input  wire sin_i,      // serial input feeding the input shift register
    output wire sout_o      // XOR of every output bit of the block
);
    localparam integer TILES  = CHANNELS / LANES;
    localparam integer TILE_W = (TILES > 1) ? $clog2(TILES) : 1;
    localparam integer CHAN_W = (CHANNELS > 1) ? $clog2(CHANNELS) : 1;
    localparam integer IN_W   = 1 + CHAN_W + 94 + 1 + TILE_W + 32 * LANES + USER_W + 1;

    reg [IN_W-1:0] sh_q;
    always @(posedge clk_i) sh_q <= {sh_q[IN_W-2:0], sin_i};

    wire               in_ready, out_valid;
    wire [8*LANES-1:0] out_data;
    wire [USER_W-1:0]  out_user;
    reg                sout_q;

    requant_pipeline #(
        .LANES(LANES), .CHANNELS(CHANNELS), .USER_W(USER_W)
    ) u_dut (
        .clk_i        (clk_i),
        .rst_i        (rst_i),
        .prm_we_i     (sh_q[0]),
        .prm_chan_i   (sh_q[1 +: CHAN_W]),
        .prm_bias_i   (sh_q[1 + CHAN_W +: 32]),
        .prm_m0_i     (sh_q[33 + CHAN_W +: 32]),
        .prm_shift_i  (sh_q[65 + CHAN_W +: 6]),
        .prm_zp_i     (sh_q[71 + CHAN_W +: 8]),
        .prm_act_min_i(sh_q[79 + CHAN_W +: 8]),
        .prm_act_max_i(sh_q[87 + CHAN_W +: 8]),
        .in_valid_i   (sh_q[95 + CHAN_W]),
        .in_ready_o   (in_ready),
        .in_tile_i    (sh_q[96 + CHAN_W +: TILE_W]),
        .in_data_i    (sh_q[96 + CHAN_W + TILE_W +: 32 * LANES]),
        .in_user_i    (sh_q[96 + CHAN_W + TILE_W + 32 * LANES +: USER_W]),
        .out_valid_o  (out_valid),
        .out_ready_i  (sh_q[IN_W-1]),
        .out_data_o   (out_data),
        .out_user_o   (out_user)
    );

    always @(posedge clk_i) sout_q <= ^{in_ready, out_valid, out_data, out_user};
    assign sout_o = sout_q;
endmodule

`default_nettype wire
