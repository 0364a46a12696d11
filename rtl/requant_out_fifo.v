// requant_out_fifo: the output buffer of the requantize pipeline.
//
// A synchronous FIFO with a push port that has no ready (the caller guarantees room:
// requant_pipeline admits a beat only while the beats in flight plus the beats stored
// here stay below DEPTH) and a valid/ready pop side. The entry written by a push is the
// clamp stage's register (stage 8). Data is read from the storage through a multiplexer
// (no extra register), so a push at rising edge t is visible on the output after edge t.
`default_nettype none

module requant_out_fifo #(
    parameter integer WIDTH = 8,                                   // bits per entry
    parameter integer DEPTH = 9,                                   // number of entries
    parameter integer PTR_W = (DEPTH > 1) ? $clog2(DEPTH) : 1      // pointer width
) (
    input  wire             clk_i,      // clock, rising edge
    input  wire             rst_i,      // synchronous active-high reset: empties the FIFO
    input  wire             push_i,     // write wdata_i (must not be asserted when full)
    input  wire [WIDTH-1:0] wdata_i,    // data to write
    output wire             valid_o,    // FIFO not empty: rdata_o is the oldest entry
    input  wire             ready_i,    // pop the oldest entry when valid_o && ready_i
    output wire [WIDTH-1:0] rdata_o     // oldest entry (stable while valid_o && !ready_i)
);
    generate
        if (WIDTH < 1 || DEPTH < 2 || (1 << PTR_W) < DEPTH) begin : g_bad_params
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "requant_out_fifo: WIDTH = %0d, DEPTH = %0d, PTR_W = %0d: need WIDTH >= 1, DEPTH >= 2, 2^PTR_W >= DEPTH",
                           WIDTH, DEPTH, PTR_W);
`else
            $error("requant_out_fifo: WIDTH = %0d, DEPTH = %0d, PTR_W = %0d: need WIDTH >= 1, DEPTH >= 2, 2^PTR_W >= DEPTH",
                   WIDTH, DEPTH, PTR_W);
`endif
        end
    endgenerate

    localparam [PTR_W-1:0] LAST = PTR_W'(DEPTH - 1);

    reg [WIDTH-1:0] mem_q [0:DEPTH-1];
    reg [PTR_W-1:0] wr_ptr_q, rd_ptr_q;
    reg [PTR_W:0]   count_q;
    wire            pop = valid_o && ready_i;

    always @(posedge clk_i) begin
        if (push_i) mem_q[wr_ptr_q] <= wdata_i;
    end

    always @(posedge clk_i) begin
        if (rst_i) begin
            wr_ptr_q <= '0;
            rd_ptr_q <= '0;
            count_q  <= '0;
        end else begin
            if (push_i) wr_ptr_q <= (wr_ptr_q == LAST) ? '0 : wr_ptr_q + 1'b1;
            if (pop)    rd_ptr_q <= (rd_ptr_q == LAST) ? '0 : rd_ptr_q + 1'b1;
            count_q <= count_q + {{PTR_W{1'b0}}, push_i} - {{PTR_W{1'b0}}, pop};
        end
    end

    assign valid_o = (count_q != '0);
    assign rdata_o = mem_q[rd_ptr_q];

`ifndef SYNTHESIS
    // Simulation check of the caller's promise (push only when there is room).
    always @(posedge clk_i) begin
        if (!rst_i && push_i && !pop && count_q == (PTR_W + 1)'(DEPTH))
            $error("requant_out_fifo: push into a full FIFO (DEPTH = %0d)", DEPTH);
    end
`endif

endmodule

`default_nettype wire
