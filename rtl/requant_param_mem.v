// requant_param_mem: one bank of the requantize parameter memory.
//
// A simple dual-port RAM: one synchronous write port, one synchronous read port
// (registered read data, read-first: a read and a write of the same address on the same
// rising edge return the old contents). The read data register is stage 0 (parameter read) of
// the requantize pipeline. Maps onto a block RAM; no reset (contents are undefined until
// written).
`default_nettype none

module requant_param_mem #(
    parameter integer WIDTH  = 94,                                // bits per entry
    parameter integer DEPTH  = 8,                                 // number of entries
    parameter integer ADDR_W = (DEPTH > 1) ? $clog2(DEPTH) : 1    // address width
) (
    input  wire              clk_i,     // clock, rising edge
    input  wire              we_i,      // write enable: mem[waddr_i] <= wdata_i
    input  wire [ADDR_W-1:0] waddr_i,   // write address, < DEPTH
    input  wire [WIDTH-1:0]  wdata_i,   // write data
    input  wire [ADDR_W-1:0] raddr_i,   // read address, < DEPTH (read every cycle)
    output wire [WIDTH-1:0]  rdata_o    // mem[raddr_i] of the previous rising edge
);
    generate
        if (WIDTH < 1 || DEPTH < 1 || (1 << ADDR_W) < DEPTH) begin : g_bad_params
`ifdef __ICARUS__
            // Icarus 11 has no elaboration-time $error: stop at time 0 instead.
            initial $fatal(1, "requant_param_mem: WIDTH = %0d, DEPTH = %0d, ADDR_W = %0d: need WIDTH >= 1, DEPTH >= 1, 2^ADDR_W >= DEPTH",
                           WIDTH, DEPTH, ADDR_W);
`else
            $error("requant_param_mem: WIDTH = %0d, DEPTH = %0d, ADDR_W = %0d: need WIDTH >= 1, DEPTH >= 1, 2^ADDR_W >= DEPTH",
                   WIDTH, DEPTH, ADDR_W);
`endif
        end
    endgenerate

    reg [WIDTH-1:0] mem_q [0:DEPTH-1];
    reg [WIDTH-1:0] rdata_q;
    always @(posedge clk_i) begin
        if (we_i) mem_q[waddr_i] <= wdata_i;
        rdata_q <= mem_q[raddr_i];
    end
    assign rdata_o = rdata_q;

endmodule

`default_nettype wire
