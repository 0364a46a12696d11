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
`ifdef FORMAL
    ,
    output wire [PTR_W:0]   f_count_o   // formal only: entries held (for the caller's invariants)
`endif
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

`ifdef FORMAL
    // ---------------------------------------------------------------- formal properties
    // Proved by k-induction (formal/run.py, target "fifo"); QMAC_FORMAL_FIFO_TOP is set
    // when this module is the top: the reset and the caller's promise are then assumed,
    // otherwise the promise is an assertion the caller must meet.
    assign f_count_o = count_q;
    reg f_past_valid = 1'b0;                    // a clock edge has happened
    always @(posedge clk_i) f_past_valid <= 1'b1;
`ifdef QMAC_FORMAL_FIFO_TOP
    always @(*) if (!f_past_valid) assume (rst_i);
    always @(*) if (!rst_i && push_i && !pop) assume (count_q < (PTR_W + 1)'(DEPTH));
`else
    always @(*) if (f_past_valid && !rst_i && push_i && !pop) assert (count_q < (PTR_W + 1)'(DEPTH));
`endif
    // occupancy within bounds, pointers in range and DEPTH apart by the count
    wire [PTR_W+1:0] f_rd_plus_count = {1'b0, rd_ptr_q} + {1'b0, count_q};
    wire [PTR_W+1:0] f_wr_expect = (f_rd_plus_count >= (PTR_W + 2)'(DEPTH))
                                   ? f_rd_plus_count - (PTR_W + 2)'(DEPTH) : f_rd_plus_count;
    always @(*) begin
        if (f_past_valid) begin
            assert (count_q <= (PTR_W + 1)'(DEPTH));
            assert (valid_o == (count_q != '0));
            assert (wr_ptr_q <= LAST && rd_ptr_q <= LAST);
            assert (f_wr_expect == {1'b0, wr_ptr_q});
        end
    end
    // data stable while stalled: a presented entry stays until it is taken
    always @(posedge clk_i) begin
        if (f_past_valid && !$past(rst_i) && $past(valid_o && !ready_i)) begin
            assert (valid_o);
`ifndef QMAC_FORMAL_FIFO_NO_DATA
            assert (rdata_o == $past(rdata_o));
`endif
        end
    end
`ifndef QMAC_FORMAL_FIFO_NO_DATA
    // no entry lost, duplicated or reordered: one arbitrarily chosen push is tracked;
    // f_ahead counts the entries in front of it, and it must come out exactly when they
    // have gone, with its data
    (* anyseq *) reg f_pick;                    // the solver chooses which push to track
    reg             f_tracking = 1'b0;          // a tracked entry is inside
    reg [WIDTH-1:0] f_data;                     // its data
    reg [PTR_W:0]   f_ahead;                    // entries in front of it
    wire [PTR_W:0]  f_count_after_pop = count_q - {{PTR_W{1'b0}}, pop};
    wire [PTR_W+1:0] f_slot_sum = {1'b0, rd_ptr_q} + {1'b0, f_ahead};
    wire [PTR_W+1:0] f_slot = (f_slot_sum >= (PTR_W + 2)'(DEPTH)) ? f_slot_sum - (PTR_W + 2)'(DEPTH)
                                                                  : f_slot_sum;
    always @(posedge clk_i) begin
        if (rst_i) begin
            f_tracking <= 1'b0;
        end else if (!f_tracking) begin
            if (push_i && f_pick) begin
                f_tracking <= 1'b1;
                f_data     <= wdata_i;
                f_ahead    <= f_count_after_pop;
            end
        end else if (pop) begin
            if (f_ahead == '0) begin
                assert (rdata_o == f_data);     // it leaves now, intact
                f_tracking <= 1'b0;
            end else begin
                f_ahead <= f_ahead - 1'b1;
            end
        end
    end
    always @(*) begin
        if (f_past_valid && f_tracking) begin
            assert (f_ahead < count_q);
            assert (mem_q[f_slot[PTR_W-1:0]] == f_data);
        end
    end
`endif  // QMAC_FORMAL_FIFO_NO_DATA (set by callers that prove control only; the data
        // properties are proved with this module as the top)
`endif

endmodule

`default_nettype wire
