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
// int32), res_last_o on row ROWS-1.  Latency: when the last beat is accepted at clock
// edge E, row 0 is presented from edge E+COLS on and, without back-pressure, row r moves
// at edge E+COLS+1+r.  The results of tile t drain while tile t+1 is being computed.
//
// Back-pressure: the captured results sit in one shadow register per PE.  A beat with
// op_last_i is accepted only when the previous tile's results have all left (op_ready_o
// depends combinationally on op_last_i); all other beats are always accepted.
module mac_array #(
    parameter integer ROWS = 8,  // rows of the C tile = int8 lanes of op_a_i (>= 1)
    parameter integer COLS = 8   // columns of the C tile = int8 lanes of op_b_i, int32 lanes of res_data_o (>= 1)
) (
    input  wire                 clk_i,       // clock, all registers on its rising edge
    input  wire                 rst_i,       // synchronous reset, active high (drops in-flight beats and results)
    input  wire                 op_valid_i,  // operand stream: beat valid
    output wire                 op_ready_o,  // operand stream: beat accepted (low only for a last beat while results are pending)
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
    reg  busy_q;   // a tile's last beat was accepted and its results have not all left
    reg  fresh_q;  // no beat accepted since reset: the next one starts a new sum
    assign op_ready_o = !busy_q || !op_last_i;
    wire op_fire = op_valid_i && op_ready_o;

    // ---- operand skew and the PE grid -----------------------------------------------
    wire [ROWS*8-1:0]       a_skew;  // row i delayed by i cycles
    wire [COLS*8-1:0]       b_skew;  // column j delayed by j cycles
    wire [ROWS*COLS*32-1:0] res_all; // captured sums, C[i][j] at [32*(i*COLS+j) +: 32]

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
        .row0_o (row0_done),
        .res_o  (res_all)
    );

    // ---- result drain (de-skew) ------------------------------------------------------
    // Row 0 of a tile is complete one edge after the tile's last beat reaches
    // PE(0, COLS-1) (row0_done); row r is complete r edges later, so presenting row r no
    // earlier than r cycles after row 0 (one row per cycle at most) never shows a row
    // before all of its columns are captured.
    reg            res_valid_q;  // a result row is presented
    reg [ROWS-1:0] row_oh_q;     // one-hot: the row presented (all zero when none)
    wire res_fire   = res_valid_q && res_ready_i;
    integer r;
    always @(posedge clk_i) begin
        if (rst_i) begin
            busy_q      <= 1'b0;
            fresh_q     <= 1'b1;
            res_valid_q <= 1'b0;
            row_oh_q    <= {ROWS{1'b0}};
        end else begin
            if (op_fire) begin
                fresh_q <= 1'b0;
            end
            if (op_fire && op_last_i) begin
                busy_q <= 1'b1;
            end else if (res_fire && row_oh_q[ROWS-1]) begin
                busy_q <= 1'b0;
            end
            if (row0_done) begin
                // Only one tile is ever pending (busy_q), so no drain is in progress here.
                res_valid_q <= 1'b1;
                row_oh_q    <= {ROWS{1'b0}};
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

    // One-hot AND-OR row multiplexer; zero when no row is presented (so the result data
    // never shows the uninitialised shadow registers).
    reg [COLS*32-1:0] row_sel;
    integer s;
    always @* begin
        row_sel = {(COLS*32){1'b0}};
        for (s = 0; s < ROWS; s = s + 1) begin
            row_sel = row_sel | ({(COLS*32){row_oh_q[s]}} & res_all[s*COLS*32 +: COLS*32]);
        end
    end

    assign res_valid_o = res_valid_q;
    assign res_data_o  = row_sel;
    assign res_last_o  = row_oh_q[ROWS-1];
endmodule
`default_nettype wire
