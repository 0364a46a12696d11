`default_nettype none
// sim_error_dut -- a testbench-only module (not RTL) that makes the simulator report an
// error on request, so the regression can prove that the kit's runner fails a test on
// every kind of simulator error (tests/test_kit_sim_errors.py).
//
// mode_i, sampled on every rising edge:
//   0  nothing (a clean run must pass)
//   1  $error with a message
//   2  a failed immediate assertion without an action block (Icarus prints a bare ERROR)
//   3  $fatal (the simulator stops)
module sim_error_dut (
    input  wire       clk_i,   // clock
    input  wire [1:0] mode_i,  // which error to raise at the next rising edge
    output wire       busy_o   // mode_i registered (gives the module an output)
);
    reg busy_q;
    always @(posedge clk_i) begin
        busy_q <= (mode_i != 2'd0);
        if (mode_i == 2'd1)
            $error("sim_error_dut: mode 1 raises $error");
        assert (mode_i != 2'd2);
        if (mode_i == 2'd3)
            $fatal(1, "sim_error_dut: mode 3 raises $fatal");
    end
    assign busy_o = busy_q;
endmodule
`default_nettype wire
