`default_nettype none
// mac_grid -- ROWS x COLS output-stationary systolic grid of mac_pe.
//
// A operands enter at the left edge (row i) and move one PE to the right per cycle;
// B operands enter at the top edge (column j) and move one PE down per cycle.  The
// inputs must already be skewed (mac_skew): row i / column j delayed by i / j cycles,
// so that A[i][k] and B[k][j] meet in PE(i, j).  The control of a beat reaches PE(i, j)
// on diagonal d = i + j: en_i[d] / clr_i[d] / cap_i[d] are the controls of the beat whose
// operands are in the registers of the PEs on that diagonal this cycle.
// Datapath only: no reset.
module mac_grid #(
    parameter integer ROWS = 8,  // rows of PEs = rows of the C tile (>= 1)
    parameter integer COLS = 8   // columns of PEs = columns of the C tile (>= 1)
) (
    input  wire                      clk_i,  // clock, all registers on its rising edge
    input  wire [ROWS*8-1:0]         a_i,    // skewed A column: row i (int8) in bits [8*i +: 8]
    input  wire [COLS*8-1:0]         b_i,    // skewed B row: column j (int8) in bits [8*j +: 8]
    input  wire [ROWS+COLS-2:0]      en_i,   // per diagonal d = i + j: valid beat, accumulate
    input  wire [ROWS+COLS-2:0]      clr_i,  // per diagonal: the beat starts a new sum
    input  wire [ROWS+COLS-2:0]      cap_i,  // per diagonal: the beat ends a tile, capture sums
    output wire [ROWS*COLS*32-1:0]   res_o   // captured sums: C[i][j] (int32) at [32*(i*COLS+j) +: 32]
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

    // Operand links.  a_link segment (i, j) enters PE(i, j) from the left; segment
    // (i, COLS) is what the last column forwards out of the array.  Same for b_link
    // downwards, segment (ROWS, j) leaving the bottom row.
    /* verilator lint_off UNUSEDSIGNAL */
    // The operands forwarded out of the right / bottom edge have no consumer.
    wire [ROWS*(COLS+1)*8-1:0] a_link;
    wire [(ROWS+1)*COLS*8-1:0] b_link;
    /* verilator lint_on UNUSEDSIGNAL */

    genvar i, j;
    generate
        for (i = 0; i < ROWS; i = i + 1) begin : g_edge_a
            assign a_link[(i*(COLS+1))*8 +: 8] = a_i[i*8 +: 8];
        end
        for (j = 0; j < COLS; j = j + 1) begin : g_edge_b
            assign b_link[j*8 +: 8] = b_i[j*8 +: 8];
        end
        for (i = 0; i < ROWS; i = i + 1) begin : g_row
            for (j = 0; j < COLS; j = j + 1) begin : g_col
                mac_pe u_pe (
                    .clk_i (clk_i),
                    .a_i   (a_link[(i*(COLS+1)+j)*8 +: 8]),
                    .b_i   (b_link[(i*COLS+j)*8 +: 8]),
                    .en_i  (en_i[i+j]),
                    .clr_i (clr_i[i+j]),
                    .cap_i (cap_i[i+j]),
                    .a_o   (a_link[(i*(COLS+1)+j+1)*8 +: 8]),
                    .b_o   (b_link[((i+1)*COLS+j)*8 +: 8]),
                    .res_o (res_o[(i*COLS+j)*32 +: 32])
                );
            end
        end
    endgenerate
endmodule
`default_nettype wire
