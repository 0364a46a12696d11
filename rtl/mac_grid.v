`default_nettype none
// mac_grid -- ROWS x COLS output-stationary systolic grid of mac_pe, with the control
// wavefront.
//
// A operands enter at the left edge (row i) and move one PE to the right per cycle;
// B operands enter at the top edge (column j) and move one PE down per cycle.  The
// operand inputs must already be skewed (mac_skew): row i / column j delayed by i / j
// cycles, so that A[i][k] and B[k][j] meet in PE(i, j), one cycle after diagonal
// d = i + j of the grid.  The controls of a beat (valid, first, last) enter with its
// unskewed lane 0 (row 0 / column 0) and travel down a delay line of one register per
// anti-diagonal, one stage longer than the grid: stage d + 1 drives the PEs of diagonal
// d = i + j, so PE(i, j) sees them in the cycle its product register holds that beat's
// product (one cycle after its operand registers held the operands).  The bank bit of a tile-ending beat
// travels with its cap bit, so every PE of the wavefront captures that tile's sums into
// the same shadow bank (res0_o / res1_o).
module mac_grid #(
    parameter integer ROWS = 8,  // rows of PEs = rows of the C tile (>= 1)
    parameter integer COLS = 8   // columns of PEs = columns of the C tile (>= 1)
) (
    input  wire                      clk_i,   // clock, all registers on its rising edge
    input  wire                      rst_i,   // synchronous reset, active high: drops in-flight beats
    input  wire [ROWS*8-1:0]         a_i,     // skewed A column: row i (int8) in bits [8*i +: 8]
    input  wire [COLS*8-1:0]         b_i,     // skewed B row: column j (int8) in bits [8*j +: 8]
    input  wire                      en_i,    // a beat enters (its row 0 / column 0 operands are on a_i / b_i)
    input  wire                      clr_i,   // with en_i: the beat starts a new sum
    input  wire                      cap_i,   // with en_i: the beat ends a tile (capture the sums)
    input  wire                      bank_i,  // with en_i and cap_i: the shadow bank the tile's sums go to (0 or 1)
    output wire                      row0_o,  // a tile's last product is in PE(0, COLS-1): row 0 of the results is complete after this edge
    output wire [ROWS*COLS*32-1:0]   res0_o,  // shadow bank 0: C[i][j] (int32) at [32*(i*COLS+j) +: 32]
    output wire [ROWS*COLS*32-1:0]   res1_o   // shadow bank 1, same packing
);
    generate
        if (ROWS < 1) begin : g_bad_rows
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "mac_grid: parameter ROWS = %0d is illegal; it must be >= 1", ROWS);
`else
            $error("mac_grid: parameter ROWS = %0d is illegal; it must be >= 1", ROWS);
`endif
        end
        if (COLS < 1) begin : g_bad_cols
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "mac_grid: parameter COLS = %0d is illegal; it must be >= 1", COLS);
`else
            $error("mac_grid: parameter COLS = %0d is illegal; it must be >= 1", COLS);
`endif
        end
    endgenerate

    // Control delay line, one scalar register set per anti-diagonal (in its own scope
    // so that a change on one diagonal only reaches the PEs of that diagonal).  Only
    // the valid bit is reset; first / last / bank matter only with it.
    localparam integer DIAGS = ROWS + COLS;  // stages: one per anti-diagonal, plus the multiplier stage
    genvar d;
    generate
        for (d = 0; d < DIAGS; d = d + 1) begin : g_diag
            reg en_q;   // a valid beat is in the operand registers of diagonal d
            reg clr_q;  // ... and it starts a new sum
            reg cap_q;  // ... and it ends a tile
            reg bnk_q;  // ... into this shadow bank
            if (d == 0) begin : g_head
                always @(posedge clk_i) begin
                    en_q  <= en_i && !rst_i;
                    clr_q <= clr_i;
                    cap_q <= cap_i;
                    bnk_q <= bank_i;
                end
            end else begin : g_link
                always @(posedge clk_i) begin
                    en_q  <= g_diag[d-1].en_q && !rst_i;
                    clr_q <= g_diag[d-1].clr_q;
                    cap_q <= g_diag[d-1].cap_q;
                    bnk_q <= g_diag[d-1].bnk_q;
                end
            end
        end
    endgenerate

    // (guarded so that an illegal ROWS / COLS reaches its check above instead of a
    // reference to a diagonal that does not exist)
    generate
        if (ROWS >= 1 && COLS >= 1) begin : g_row0
            assign row0_o = g_diag[COLS].en_q && g_diag[COLS].cap_q;
        end else begin : g_no_row0
            assign row0_o = 1'b0;
        end
    endgenerate

    // Each PE's operand links live in its own generate scope (g_row[i].g_col[j]):
    // a_in / b_in enter the PE, a_fwd / b_fwd leave it to the right / downwards.  (One
    // wide shared link vector would make every PE output change re-evaluate every PE
    // input in event-driven simulators such as Icarus.)
    genvar i, j;
    generate
        for (i = 0; i < ROWS; i = i + 1) begin : g_row
            for (j = 0; j < COLS; j = j + 1) begin : g_col
                wire [7:0] a_in;   // A operand entering PE(i, j)
                wire [7:0] b_in;   // B operand entering PE(i, j)
                /* verilator lint_off UNUSEDSIGNAL */
                // In the last column / row the forwarded operand has no consumer.
                wire [7:0] a_fwd;  // A operand forwarded to PE(i, j+1)
                wire [7:0] b_fwd;  // B operand forwarded to PE(i+1, j)
                /* verilator lint_on UNUSEDSIGNAL */
                if (j == 0) begin : g_a_edge
                    assign a_in = a_i[i*8 +: 8];
                end else begin : g_a_link
                    assign a_in = g_row[i].g_col[j-1].a_fwd;
                end
                if (i == 0) begin : g_b_edge
                    assign b_in = b_i[j*8 +: 8];
                end else begin : g_b_link
                    assign b_in = g_row[i-1].g_col[j].b_fwd;
                end
                mac_pe u_pe (
                    .clk_i  (clk_i),
                    .a_i    (a_in),
                    .b_i    (b_in),
                    .en_i   (g_diag[i+j+1].en_q),
                    .clr_i  (g_diag[i+j+1].clr_q),
                    .cap_i  (g_diag[i+j+1].cap_q),
                    .bank_i (g_diag[i+j+1].bnk_q),
                    .a_o    (a_fwd),
                    .b_o    (b_fwd),
                    .res0_o (res0_o[(i*COLS+j)*32 +: 32]),
                    .res1_o (res1_o[(i*COLS+j)*32 +: 32])
                );
            end
        end
    endgenerate
endmodule
`default_nettype wire
