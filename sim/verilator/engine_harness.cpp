// engine_harness.cpp -- bulk-mode driver of rtl/qlayer_engine.v under Verilator.
//
// The host (tb/bulk.py) prepares each layer exactly as the cocotb path does (tb/engine.py:
// im2col rows padded to blocks of ROWS, channels to tiles of COLS, input zero point folded
// into the bias) and writes it as a job file -- a memory image of everything the engine is
// fed; this program streams it into the RTL cycle by cycle with no Python in the loop and
// writes every output beat (data, last flag, cycle) to a result file, which the host
// compares with the golden model.  The engine is kept between jobs (one process per run,
// one continuous clock, one waveform), commands come on stdin, one per line:
//
//     run <job file> <result file>   ->  "ok <cycles> <load cycles> <array beats>"
//                                        or "error <one line>"
//     quit                           ->  (exits 0; writes coverage / closes the waveform)
//
// Timing is the cocotb driver's (tb/engine.py EngineEnv.load / run): one configuration,
// weight or parameter write per cycle; the first activation beat is offered one cycle
// after the last write; out_ready_i is high (or randomly low, see out_stall); a layer's
// cycles run from the last write's edge to the edge of the last output beat.  So the
// figures equal the cocotb path's, which tests/test_bulk.py checks.
//
// Job file (little-endian):
//   char[8] "QMACJOB1"
//   u32 rows, cols, k, n_tiles, k_tile, blocks, budget (watchdog cycles),
//       in_stall_ppm, out_stall_ppm, stall_seed
//   u8  weights[n_tiles * k][cols]             word t*K + k (lane j = channel t*COLS + j)
//   i32 params[n_tiles * cols][6]               bias (zp folded), m0, shift, zp, act_min, act_max
//   u8  acts[blocks * k][rows]                  beat b*K + k (lane i = row b*ROWS + i)
// Result file (little-endian):
//   char[8] "QMACRES1"
//   u64 cycles, load_cycles, array_beats, beats
//   u8  data[beats][cols]; u8 last[beats]; u64 cycle[beats]
//
// Build (tb/bulk.py does it): verilator --cc --exe --build -GROWS=.. ... with
// -DQMAC_TOP_H="Vqlayer_engine.h" and sim/verilator/engine_harness.vlt (makes the
// MAC-array handshake readable for the array-beat count).
// Options: --trace <file.fst> (needs --trace-fst at build), +verilator+coverage+file+<f>.
// The model is named "" and built with --no-trace-top, so the FST hierarchy starts at
// qlayer_engine as Icarus's does and sim/qlayer_engine.gtkw opens it unchanged.

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "verilated.h"
#include "Vqlayer_engine.h"
#include "Vqlayer_engine___024root.h"
#if VM_TRACE
#include "verilated_fst_c.h"
#endif

namespace {

// ---- ports of any width: CData/SData/IData/QData or VlWide<N> (more than 64 bits) ------
template <class T>
void set_bytes(T& port, const uint8_t* b, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(b[i]) << (8 * i);
    port = static_cast<T>(v);
}
template <std::size_t W>
void set_bytes(VlWide<W>& port, const uint8_t* b, int n) {
    for (std::size_t w = 0; w < W; ++w) port[w] = 0;
    for (int i = 0; i < n; ++i) port[i / 4] |= uint32_t(b[i]) << (8 * (i % 4));
}
template <class T>
void get_bytes(const T& port, uint8_t* b, int n) {
    uint64_t v = port;
    for (int i = 0; i < n; ++i) b[i] = uint8_t(v >> (8 * i));
}
template <std::size_t W>
void get_bytes(const VlWide<W>& port, uint8_t* b, int n) {
    for (int i = 0; i < n; ++i) b[i] = uint8_t(port[i / 4] >> (8 * (i % 4)));
}

struct Job {
    uint32_t rows, cols, k, n_tiles, k_tile, blocks, budget, in_stall, out_stall, seed;
    std::vector<uint8_t> weights, acts;
    std::vector<int32_t> params;
};

bool read_job(const std::string& path, Job& j, std::string& err) {
    std::ifstream f(path, std::ios::binary);
    if (!f) { err = "cannot open job file " + path; return false; }
    char magic[8];
    f.read(magic, 8);
    if (!f || std::memcmp(magic, "QMACJOB1", 8) != 0) { err = path + " is not a QMACJOB1 file"; return false; }
    uint32_t h[10];
    f.read(reinterpret_cast<char*>(h), sizeof h);
    j.rows = h[0]; j.cols = h[1]; j.k = h[2]; j.n_tiles = h[3]; j.k_tile = h[4];
    j.blocks = h[5]; j.budget = h[6]; j.in_stall = h[7]; j.out_stall = h[8]; j.seed = h[9];
    j.weights.resize(size_t(j.n_tiles) * j.k * j.cols);
    j.params.resize(size_t(j.n_tiles) * j.cols * 6);
    j.acts.resize(size_t(j.blocks) * j.k * j.rows);
    f.read(reinterpret_cast<char*>(j.weights.data()), std::streamsize(j.weights.size()));
    f.read(reinterpret_cast<char*>(j.params.data()), std::streamsize(j.params.size() * 4));
    f.read(reinterpret_cast<char*>(j.acts.data()), std::streamsize(j.acts.size()));
    if (!f) { err = path + " is shorter than its header says"; return false; }
    return true;
}

// xorshift64*: the random stalls of a job (reproducible from its stall_seed)
struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ULL + 1) {}
    uint32_t ppm() {
        s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
        return uint32_t((s * 0x2545F4914F6CDD1DULL) >> 32) % 1000000u;
    }
};

class Harness {
  public:
    Harness(VerilatedContext* ctx, const char* trace_file) : ctx_(ctx), top_(new Vqlayer_engine{ctx, ""}) {
#if VM_TRACE
        if (trace_file) {
            trace_.reset(new VerilatedFstC);
            top_->trace(trace_.get(), 99);
            trace_->open(trace_file);
        }
#else
        if (trace_file) {
            std::cerr << "engine_harness: --trace needs a build with --trace-fst\n";
            std::exit(2);
        }
#endif
        top_->clk_i = 1;   // as the cocotb clock: high at time 0, rising edges at n * 10 ns
        top_->rst_i = 1;
        idle_inputs();
        top_->eval();
        dump();
        for (int i = 0; i < 4; ++i) edge();   // edge 0 plus three edges of reset
        top_->rst_i = 0;
    }
    ~Harness() { close(); }

    void close() {
#if VM_TRACE
        if (trace_) { trace_->close(); trace_.reset(); }
#endif
        if (top_ && !closed_) { top_->final(); }
        closed_ = true;
    }

    bool failed() const { return ctx_->gotError(); }

    // Run one job; false with err on a timeout or an RTL $error.
    bool run(const Job& j, const std::string& out_path, std::string& reply) {
        Vqlayer_engine& d = *top_;
        if (8 * j.rows != kActBits || 8 * j.cols != kOutBits) {
            std::ostringstream m;
            m << "job is " << j.rows << "x" << j.cols << " but this harness was built for "
              << kActBits / 8 << "x" << kOutBits / 8;
            reply = m.str();
            return false;
        }
        const uint64_t start = cycle_;
        // ---- configuration (inputs held for the whole job; bank 0 computes and is
        // written: the harness runs one job at a time), then weights and parameters,
        // one write per cycle
        d.k_i = j.k; d.n_tiles_i = j.n_tiles; d.k_tile_i = j.k_tile;
        d.bank_i = 0; d.w_bank_i = 0; d.prm_bank_i = 0;
        const uint32_t words = j.n_tiles * j.k;
        for (uint32_t w = 0; w < words; ++w) {
            d.w_we_i = 1; d.w_addr_i = w;
            set_bytes(d.w_data_i, &j.weights[size_t(w) * j.cols], int(j.cols));
            if (!step(reply)) return false;
        }
        d.w_we_i = 0;
        for (uint32_t c = 0; c < j.n_tiles * j.cols; ++c) {
            const int32_t* p = &j.params[size_t(c) * 6];
            d.prm_we_i = 1; d.prm_chan_i = c;
            d.prm_bias_i = uint32_t(p[0]); d.prm_m0_i = uint32_t(p[1]);
            d.prm_shift_i = uint32_t(p[2]) & 0x3F; d.prm_zp_i = uint32_t(p[3]) & 0xFF;
            d.prm_act_min_i = uint32_t(p[4]) & 0xFF; d.prm_act_max_i = uint32_t(p[5]) & 0xFF;
            if (!step(reply)) return false;
        }
        d.prm_we_i = 0;
        const uint64_t load_cycles = cycle_ - start;
        // ---- stream the activations, take the outputs
        const uint64_t first = cycle_;
        const uint64_t n_act = uint64_t(j.blocks) * j.k;
        const uint64_t n_out = uint64_t(j.blocks) * j.n_tiles * j.rows;
        std::vector<uint8_t> data(n_out * j.cols), last(n_out);
        std::vector<uint64_t> when(n_out);
        Rng rng(j.seed);
        uint64_t sent = 0, got = 0, array_beats = 0;
        bool offered = false;
        // the cocotb source offers its first beat after the edge following the last write
        if (!step(reply)) return false;
        while (got < n_out) {
            if (cycle_ - first > j.budget) {
                std::ostringstream m;
                m << "timeout after " << j.budget << " cycles with " << (n_act - sent)
                  << " activation beats unsent and " << (n_out - got) << " of " << n_out
                  << " output beats missing (cycle " << cycle_ << ")";
                reply = m.str();
                return false;
            }
            if (!offered && sent < n_act && !(j.in_stall && rng.ppm() < j.in_stall)) {
                set_bytes(d.act_data_i, &j.acts[sent * j.rows], int(j.rows));
                offered = true;
            }
            d.act_valid_i = offered;
            d.out_ready_i = !(j.out_stall && rng.ppm() < j.out_stall);
            d.clk_i = 0;
            d.eval();                        // settle the ready / valid outputs
            const bool act_fire = offered && d.act_ready_o;
            const bool out_fire = d.out_valid_o && d.out_ready_i;
            if (out_fire) {
                get_bytes(d.out_data_o, &data[got * j.cols], int(j.cols));
                last[got] = d.out_last_o;
            }
            if (d.rootp->qlayer_engine__DOT__op_valid && d.rootp->qlayer_engine__DOT__op_ready)
                ++array_beats;
            if (!edge_after_eval(reply)) return false;
            if (act_fire) { ++sent; offered = false; }
            if (out_fire) when[got++] = cycle_;
        }
        d.act_valid_i = 0;
        d.out_ready_i = 0;
        const uint64_t cycles = when.empty() ? 0 : when.back() - first;
        // ---- result file
        std::ofstream f(out_path, std::ios::binary);
        const uint64_t h[4] = {cycles, load_cycles, array_beats, n_out};
        f.write("QMACRES1", 8);
        f.write(reinterpret_cast<const char*>(h), sizeof h);
        f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
        f.write(reinterpret_cast<const char*>(last.data()), std::streamsize(last.size()));
        f.write(reinterpret_cast<const char*>(when.data()), std::streamsize(when.size() * 8));
        if (!f) { reply = "cannot write result file " + out_path; return false; }
        std::ostringstream m;
        m << cycles << " " << load_cycles << " " << array_beats;
        reply = m.str();
        return true;
    }

  private:
    static constexpr int kActBits = int(QMAC_ROWS) * 8;   // -DQMAC_ROWS / -DQMAC_COLS: the
    static constexpr int kOutBits = int(QMAC_COLS) * 8;   // -G values it was built with

    void idle_inputs() {
        Vqlayer_engine& d = *top_;
        d.w_we_i = 0; d.prm_we_i = 0; d.act_valid_i = 0; d.out_ready_i = 0;
    }
    void dump() {
#if VM_TRACE
        if (trace_) trace_->dump(ctx_->time());
#endif
    }
    // One clock period: low half (inputs settle), rising edge (registers update).
    void edge() {
        top_->clk_i = 0;
        top_->eval();
        edge_after_eval_raw();
    }
    void edge_after_eval_raw() {
        ctx_->timeInc(5);                    // 5 ns: the falling edge half a period before
        dump();
        top_->clk_i = 1;
        ctx_->timeInc(5);
        top_->eval();
        dump();
        ++cycle_;
    }
    bool edge_after_eval(std::string& reply) {
        edge_after_eval_raw();
        if (ctx_->gotError()) {
            reply = "the RTL reported an error (its $error line is above) at cycle " + std::to_string(cycle_);
            return false;
        }
        return true;
    }
    bool step(std::string& reply) {
        top_->clk_i = 0;
        top_->eval();
        return edge_after_eval(reply);
    }

    VerilatedContext* ctx_;
    std::unique_ptr<Vqlayer_engine> top_;
#if VM_TRACE
    std::unique_ptr<VerilatedFstC> trace_;
#endif
    uint64_t cycle_ = 0;
    bool closed_ = false;
};

}  // namespace

int main(int argc, char** argv) {
    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    ctx->fatalOnError(false);                // an RTL $error is reported to the host, not abort()
    const char* trace_file = nullptr;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--trace") == 0 && i + 1 < argc) {
            trace_file = argv[++i];
            ctx->traceEverOn(true);
        }
    }
    int status = 0;
    {
        Harness h(ctx.get(), trace_file);
        std::string line;
        std::cout << "ready" << std::endl;
        while (std::getline(std::cin, line)) {
            std::istringstream in(line);
            std::string cmd, job_path, out_path;
            in >> cmd;
            if (cmd == "quit") break;
            if (cmd != "run" || !(in >> job_path >> out_path)) {
                std::cout << "error unknown command: " << line << std::endl;
                continue;
            }
            Job job;
            std::string reply;
            if (!read_job(job_path, job, reply)) {
                std::cout << "error " << reply << std::endl;
                continue;
            }
            const bool ok = h.run(job, out_path, reply);
            std::cout << (ok ? "ok " : "error ") << reply << std::endl;
            if (!ok && h.failed()) { status = 1; break; }
        }
        h.close();
#if VM_COVERAGE
        // while the model still exists: its points leave the context with it
        ctx->coveragep()->write();           // +verilator+coverage+file+<f>, default coverage.dat
#endif
    }
    return status;
}
