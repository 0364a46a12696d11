`default_nettype none
// mac_pe_exhaustive_tb -- testbench-only module (not RTL): every int8 x int8 product
// through one rtl/mac_pe.v (tests/test_rtl_pe_exhaustive.py compares the output with
// the golden model).
//
// Pass 0: a = -128..127 (outer), b = -128..127 (inner), each beat with clr (acc := a*b)
// and cap; the captured sum is the product.  Pass 1: the same 65,536 beats, the first
// with clr and the others accumulating, so the captured sums are the running int32 sum.
// The capture bank alternates beat by beat; the value is read from the bank just
// written.  One line per beat, "<pass> <a> <b> <result>" in decimal, to +out=<file>.
// Each beat takes three clock cycles (load the operand registers, register their
// product in the multiplier stage, then accumulate).
module mac_pe_exhaustive_tb;
    reg               clk = 1'b0;
    reg signed [7:0]  a = 8'sd0, b = 8'sd0;
    reg               en = 1'b0, clr = 1'b0, cap = 1'b0, bank = 1'b0;
    wire signed [7:0] a_fwd, b_fwd;
    wire signed [31:0] res0, res1;
    integer           fd, pass, i, j, n;
    reg [1023:0]      path;

    mac_pe u_pe (.clk_i(clk), .a_i(a), .b_i(b), .en_i(en), .clr_i(clr), .cap_i(cap),
                 .bank_i(bank), .a_o(a_fwd), .b_o(b_fwd), .res0_o(res0), .res1_o(res1));

    task tick; begin #5 clk = 1'b1; #5 clk = 1'b0; end endtask

    initial begin
        if (!$value$plusargs("out=%s", path)) begin
            $fatal(1, "mac_pe_exhaustive_tb: give +out=<file>");
        end
        fd = $fopen(path, "w");
        n = 0;
        for (pass = 0; pass < 2; pass = pass + 1) begin
            for (i = -128; i < 128; i = i + 1) begin
                for (j = -128; j < 128; j = j + 1) begin
                    a = i[7:0]; b = j[7:0]; en = 1'b0;
                    tick;                                    // a_q, b_q := a, b
                    tick;                                    // prod_q := a_q * b_q
                    en = 1'b1; cap = 1'b1; bank = n[0];
                    clr = (pass == 0) || (i == -128 && j == -128);
                    tick;                                    // acc, res<bank> := ...
                    en = 1'b0; cap = 1'b0;
                    $fwrite(fd, "%0d %0d %0d %0d\n", pass, i, j, bank ? res1 : res0);
                    n = n + 1;
                end
            end
        end
        $fclose(fd);
        $finish;
    end
endmodule
`default_nettype wire
