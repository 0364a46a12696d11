`default_nettype none
// mac_array -- ROWS x COLS INT8 MAC array with valid/ready streams (the block the layer
// engine instantiates).  Output-stationary: PE(i, j) accumulates C[i][j] = sum_k A[i][k] * B[k][j]
// in a 32-bit two's-complement (wrapping) accumulator.  See docs/microarchitecture.md for
// the cycle-by-cycle dataflow.
//
// Operand stream (op_*): one beat per k carries column k of the A tile (ROWS int8) and row
// k of the B tile (COLS int8).  op_first_i starts a new sum (clear); without it the beat
// accumulates onto the sums left by the previous beats -- also across a previous
// op_last_i, which is how a long K is split into several tiles.  op_last_i ends the tile:
// the sums including this beat are captured and emitted.  The first beat after reset always
// starts a new sum.
//
// Result stream (res_*): ROWS beats per tile, beat r carrying row r of the C tile (COLS
// int32), res_last_o on row ROWS-1, tiles in the order of their last beats.  Latency: when
// the last beat is accepted at clock edge E, row 0 is presented from edge
// S = max(E+COLS, F) on, F being the edge at which the previous tile's final row leaves,
// and, without back-pressure, row r moves at edge S+1+r (a tile alone: E+COLS+1+r).  The
// results of tile t drain while the following tiles are being computed.
//
// Back-pressure: the captured results sit in two shadow register banks per PE; successive
// tiles capture into alternate banks and the drain empties them in order.  A beat with
// op_last_i is accepted only while fewer than two tiles are pending (last beat accepted,
// final result row not yet transferred) -- op_ready_o depends combinationally on op_last_i
// only; all other beats are always accepted.  Streamed tiles of K beats, no stalls: two
// tiles per max(2*K, 2*ROWS, ROWS+COLS+2) cycles (the PE multiplier stage included;
// docs/microarchitecture.md).
module mac_array #(
    parameter integer ROWS = 8,  // rows of the C tile = int8 lanes of op_a_i (>= 1)
    parameter integer COLS = 8   // columns of the C tile = int8 lanes of op_b_i, int32 lanes of res_data_o (>= 1)
) (
    input  wire                 clk_i,       // clock, all registers on its rising edge
    input  wire                 rst_i,       // synchronous reset, active high (drops in-flight beats and results)
    input  wire                 op_valid_i,  // operand stream: beat valid
    output wire                 op_ready_o,  // operand stream: beat accepted (low only for a last beat while two tiles' results are pending)
    input  wire [ROWS*8-1:0]    op_a_i,      // operand stream: A[i][k] (int8) in bits [8*i +: 8], i = 0..ROWS-1
    input  wire [COLS*8-1:0]    op_b_i,      // operand stream: B[k][j] (int8) in bits [8*j +: 8], j = 0..COLS-1
    input  wire                 op_first_i,  // operand stream: first beat of a sum (clear the accumulators)
    input  wire                 op_last_i,   // operand stream: last beat of a tile (emit the sums)
    output wire                 res_valid_o, // result stream: beat valid
    input  wire                 res_ready_i, // result stream: beat accepted
    output wire [COLS*32-1:0]   res_data_o,  // result stream: C[r][j] (int32) in bits [32*j +: 32]; all zero when not valid
    output wire                 res_last_o   // result stream: row r = ROWS-1, the tile's final beat
);
    generate
        if (ROWS < 1) begin : g_bad_rows
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "mac_array: parameter ROWS = %0d is illegal; it must be >= 1", ROWS);
`else
            $error("mac_array: parameter ROWS = %0d is illegal; it must be >= 1", ROWS);
`endif
        end
        if (COLS < 1) begin : g_bad_cols
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "mac_array: parameter COLS = %0d is illegal; it must be >= 1", COLS);
`else
            $error("mac_array: parameter COLS = %0d is illegal; it must be >= 1", COLS);
`endif
        end
    endgenerate

    // ---- operand acceptance --------------------------------------------------------
    // A tile is pending from the edge that accepts its last beat to the edge that
    // transfers its final result row; its sums live in shadow bank (its number mod 2) in
    // between.  With two tiles pending both banks are taken, so the next tile's last beat
    // (whose wavefront would capture into the oldest tile's bank) has to wait.
    reg  [1:0] pend_q;     // tiles pending: 0, 1 or 2
    reg        fresh_q;    // no beat accepted since reset: the next one starts a new sum
    reg        wr_bank_q;  // shadow bank the next tile-ending beat captures into
    assign op_ready_o = !pend_q[1] || !op_last_i;
    wire op_fire = op_valid_i && op_ready_o;

    // ---- operand skew and the PE grid -----------------------------------------------
    wire [ROWS*8-1:0]       a_skew;   // row i delayed by i cycles
    wire [COLS*8-1:0]       b_skew;   // column j delayed by j cycles
    wire [ROWS*COLS*32-1:0] res_b0;   // shadow bank 0, C[i][j] at [32*(i*COLS+j) +: 32]
    wire [ROWS*COLS*32-1:0] res_b1;   // shadow bank 1, same packing

    mac_skew #(.LANES(ROWS), .WIDTH(8)) u_skew_a (
        .clk_i  (clk_i),
        .data_i (op_a_i),
        .data_o (a_skew)
    );

    mac_skew #(.LANES(COLS), .WIDTH(8)) u_skew_b (
        .clk_i  (clk_i),
        .data_i (op_b_i),
        .data_o (b_skew)
    );

    wire row0_done;  // the last beat of a tile reached PE(0, COLS-1)

    mac_grid #(.ROWS(ROWS), .COLS(COLS)) u_grid (
        .clk_i  (clk_i),
        .rst_i  (rst_i),
        .a_i    (a_skew),
        .b_i    (b_skew),
        .en_i   (op_fire),
        .clr_i  (op_first_i || fresh_q),
        .cap_i  (op_last_i),
        .bank_i (wr_bank_q),
        .row0_o (row0_done),
        .res0_o (res_b0),
        .res1_o (res_b1)
    );

    // ---- result drain (de-skew) ------------------------------------------------------
    // Row 0 of a tile is complete one edge after the tile's last beat reaches
    // PE(0, COLS-1) (row0_done); row r is complete r edges later, so presenting row r no
    // earlier than r cycles after row 0 (one row per cycle at most) never shows a row
    // before all of its columns are captured.  A tile whose row 0 completes while the
    // previous tile is still draining waits (queued_q) and starts at the edge that
    // transfers the previous tile's final row, so the rows of successive tiles leave
    // back to back.  Tiles drain in the order they were captured, so the bank being
    // drained (rd_bank_q) simply alternates, like the bank being captured into.
    reg            res_valid_q;  // a result row is presented
    reg [ROWS-1:0] row_oh_q;     // one-hot: the row presented (all zero when none)
    reg            rd_bank_q;    // shadow bank of the tile presented (or the next one to be)
    reg            queued_q;     // a tile's row 0 is complete, its drain has not started
    wire res_fire   = res_valid_q && res_ready_i;
    wire tile_done  = res_fire && row_oh_q[ROWS-1];             // a tile's final row leaves
    wire drain_free = !res_valid_q || tile_done;                // no row presented after this edge ...
    wire drain_go   = drain_free && (queued_q || row0_done);    // ... unless the next tile starts
    integer r;
    always @(posedge clk_i) begin
        if (rst_i) begin
            pend_q      <= 2'd0;
            fresh_q     <= 1'b1;
            wr_bank_q   <= 1'b0;
            rd_bank_q   <= 1'b0;
            queued_q    <= 1'b0;
            res_valid_q <= 1'b0;
            row_oh_q    <= '0;
        end else begin
            if (op_fire) begin
                fresh_q <= 1'b0;
            end
            if (op_fire && op_last_i) begin
                wr_bank_q <= !wr_bank_q;
            end
            // +1 for an accepted last beat, -1 for a final row out (op_ready_o keeps it <= 2)
            if ((op_fire && op_last_i) && !tile_done) begin
                pend_q <= pend_q + 2'd1;
            end else if (tile_done && !(op_fire && op_last_i)) begin
                pend_q <= pend_q - 2'd1;
            end
            if (tile_done) begin
                rd_bank_q <= !rd_bank_q;
            end
            // At most one tile ever waits: a third tile's last beat is accepted only after
            // the tile being drained has left (checked below in simulation).
            queued_q <= drain_go ? (queued_q && row0_done) : (queued_q || row0_done);
            if (drain_go) begin
                res_valid_q <= 1'b1;
                row_oh_q    <= '0;
                row_oh_q[0] <= 1'b1;
            end else if (res_fire) begin
                res_valid_q <= !row_oh_q[ROWS-1];
                for (r = ROWS - 1; r > 0; r = r - 1) begin
                    row_oh_q[r] <= row_oh_q[r-1];
                end
                row_oh_q[0] <= 1'b0;
            end
        end
    end

    // One-hot AND-OR row multiplexer over the rows of the bank being drained; zero when no
    // row is presented (so the result data never shows the uninitialised shadow registers).
    // (ROWS / COLS = 0 build no multiplexer, so that they reach their checks above
    // instead of a zero replication.)
    reg [COLS*32-1:0] row_sel;
    integer s;
    generate
        if (ROWS >= 1 && COLS >= 1) begin : g_row_mux
            always @* begin
                row_sel = {(COLS*32){1'b0}};
                for (s = 0; s < ROWS; s = s + 1) begin
                    row_sel = row_sel
                            | ({(COLS*32){row_oh_q[s] && !rd_bank_q}} & res_b0[s*COLS*32 +: COLS*32])
                            | ({(COLS*32){row_oh_q[s] &&  rd_bank_q}} & res_b1[s*COLS*32 +: COLS*32]);
                end
            end
        end
    endgenerate

`ifndef SYNTHESIS
    // Invariants of the two-bank drain (the testbench would see a lost or repeated tile
    // later; these name the cause at the cycle it happens).
    always @(posedge clk_i) begin
        if (!rst_i && queued_q && row0_done && !drain_go)
            $error("mac_array: a tile completed row 0 while another one was already waiting for the drain");
        if (!rst_i && row0_done && pend_q == 2'd0)
            $error("mac_array: a tile completed row 0 with no tile pending");
    end
`endif

`ifdef FORMAL
    // ---------------------------------------------------------------- formal properties
    // Bounded model check from reset (formal/run.py, target "mac_array"); the grid's
    // in-flight wavefront is inside mac_grid, out of reach of an inductive invariant
    // here (Yosys 0.23 has no hierarchical references).  QMAC_FORMAL_MAC_TOP: this
    // module is the top (reset assumed at the start).
    reg f_past_valid = 1'b0;
    always @(posedge clk_i) f_past_valid <= 1'b1;
`ifdef QMAC_FORMAL_MAC_TOP
    always @(*) if (!f_past_valid) assume (rst_i);
`endif
    // consecutive cycles in which a last beat waits although the sink takes every row
    reg [7:0] f_blocked = 8'd0;
    always @(posedge clk_i) begin
        if (rst_i || !(op_valid_i && op_last_i && !op_ready_o && res_ready_i))
            f_blocked <= 8'd0;
        else if (f_blocked != 8'hff)
            f_blocked <= f_blocked + 8'd1;
    end
    always @(*) begin
        if (f_past_valid && !rst_i) begin
            assert (pend_q <= 2'd2);                            // two shadow banks
            assert (res_valid_q == (row_oh_q != '0));           // a row is presented ...
            assert ((row_oh_q & (row_oh_q - 1'b1)) == '0);      // ... one at a time
            assert (!queued_q || pend_q != 2'd0);               // a waiting tile is pending
            assert (!(queued_q && row0_done && !drain_go));     // at most one tile waits
            assert (!(row0_done && pend_q == 2'd0));            // no tile out of nowhere
            if (!res_valid_q) assert (res_data_o == '0);
            // no deadlock: with the sink always ready, a waiting last beat is accepted
            // within one drain (row 0 after COLS + 1 edges, then ROWS rows)
            assert (f_blocked <= 8'(ROWS + COLS + 2));
        end
    end
    always @(posedge clk_i) begin
        if (f_past_valid && !$past(rst_i) && !rst_i && $past(res_valid_o && !res_ready_i)) begin
            assert (res_valid_o);                               // held until taken ...
            assert (res_data_o == $past(res_data_o));           // ... unchanged
            assert (res_last_o == $past(res_last_o));
        end
    end
`endif

    assign res_valid_o = res_valid_q;
    assign res_data_o  = row_sel;
    assign res_last_o  = row_oh_q[ROWS-1];
endmodule
`default_nettype wire
