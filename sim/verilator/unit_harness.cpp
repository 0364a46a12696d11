// unit_harness.cpp -- bulk-mode driver of rtl/window_engine.v or rtl/eltwise_engine.v under
// Verilator (one source, the unit chosen at build time: -DQMAC_UNIT_WINDOW or
// -DQMAC_UNIT_ELTWISE, -DQMAC_LANES=<LANES>).  The sibling of engine_harness.cpp (the layer
// engine's), in the same style: the host (tb/bulk_units.py) cuts each layer into segments
// exactly as the cocotb drivers do (tb/window.py WindowEnv, tb/test_eltwise_engine.py
// EltwiseEnv) and writes them as a job file; this program plays every segment into the RTL
// cycle by cycle with no Python in the loop and writes every output beat (data, last flag,
// cycle) to a result file, which the host compares with the golden model.  The unit is kept
// between jobs (one process per run, one continuous clock, one waveform); commands on
// stdin, one per line:
//
//     run <job file> <result file>   ->  "ok <cycles> <load cycles> <beats>" or "error <line>"
//     quit                           ->  (exits 0; writes coverage / closes the waveform)
//
// A segment is what the cocotb driver does between two drains: its register / weight /
// parameter writes (one per cycle; the configuration changes only while the unit is idle),
// then its input beats streamed back to back while the output beats are taken, until all
// n_out of them have arrived.  Its load cycles are the writes; its cycles run from the edge
// of its last write (or of the previous segment's last output) to the edge of its last
// output beat.
//
// Job file (little-endian):
//   char[8] "QMACUNT1"
//   u32 lanes, in_bytes (bytes per input beat), segments, in_stall_ppm, out_stall_ppm, stall_seed
//   per segment:
//     u32 n_writes, n_in, n_out, budget (watchdog cycles)
//     n_writes x { u32 kind (0 cfg, 1 weight, 2 parameter), i32 f[7], u8 data[lanes] }
//         cfg:       f[0] address, f[1] value
//         weight:    f[0] address, data = the word's lanes           (window_engine only)
//         parameter: f[0..6] channel, bias, m0, shift, zp, act_min, act_max
//     n_in x u8 beat[in_bytes]   window: data[lanes]; eltwise: a[lanes], b[lanes], a_last
// Result file (little-endian):
//   char[8] "QMACURS1"
//   u64 segments, beats; per segment u64 load_cycles, cycles
//   u8 data[beats][lanes]; u8 last[beats]; u64 cycle[beats]
//
// Options: --trace <file.fst> (needs --trace-fst at build), +verilator+coverage+file+<f>.
// The model is named "" and built with --no-trace-top, so the FST hierarchy starts at the
// unit as in Icarus's waveforms and sim/<unit>.gtkw opens it.

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
#if defined(QMAC_UNIT_WINDOW)
#include "Vwindow_engine.h"
typedef Vwindow_engine Top;
static const char* const kUnit = "window_engine";
static const int kInBytes = QMAC_LANES;
#elif defined(QMAC_UNIT_ELTWISE)
#include "Veltwise_engine.h"
typedef Veltwise_engine Top;
static const char* const kUnit = "eltwise_engine";
static const int kInBytes = 2 * QMAC_LANES + 1;
#else
#error "build with -DQMAC_UNIT_WINDOW or -DQMAC_UNIT_ELTWISE"
#endif
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

struct Write {
    uint32_t kind;
    int32_t f[7];
    std::vector<uint8_t> data;
};
struct Segment {
    uint32_t n_in, n_out, budget;
    std::vector<Write> writes;
    std::vector<uint8_t> in;          // n_in * in_bytes
};
struct Job {
    uint32_t lanes, in_bytes, in_stall, out_stall, seed;
    std::vector<Segment> segs;
};

bool read_job(const std::string& path, Job& j, std::string& err) {
    std::ifstream f(path, std::ios::binary);
    if (!f) { err = "cannot open job file " + path; return false; }
    char magic[8];
    f.read(magic, 8);
    if (!f || std::memcmp(magic, "QMACUNT1", 8) != 0) { err = path + " is not a QMACUNT1 file"; return false; }
    uint32_t h[6];
    f.read(reinterpret_cast<char*>(h), sizeof h);
    j.lanes = h[0]; j.in_bytes = h[1]; j.in_stall = h[3]; j.out_stall = h[4]; j.seed = h[5];
    if (!f || j.lanes != uint32_t(QMAC_LANES) || j.in_bytes != uint32_t(kInBytes)) {
        std::ostringstream m;
        m << "job is for " << j.lanes << " lanes / " << j.in_bytes << "-byte beats but this "
          << kUnit << " harness was built for " << QMAC_LANES << " / " << kInBytes;
        err = m.str();
        return false;
    }
    j.segs.resize(h[2]);
    for (Segment& s : j.segs) {
        uint32_t sh[4];
        f.read(reinterpret_cast<char*>(sh), sizeof sh);
        s.n_in = sh[1]; s.n_out = sh[2]; s.budget = sh[3];
        s.writes.resize(sh[0]);
        for (Write& w : s.writes) {
            f.read(reinterpret_cast<char*>(&w.kind), 4);
            f.read(reinterpret_cast<char*>(w.f), sizeof w.f);
            w.data.resize(j.lanes);
            f.read(reinterpret_cast<char*>(w.data.data()), std::streamsize(j.lanes));
        }
        s.in.resize(size_t(s.n_in) * j.in_bytes);
        f.read(reinterpret_cast<char*>(s.in.data()), std::streamsize(s.in.size()));
        if (!f) { err = path + " is shorter than its header says"; return false; }
    }
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
    Harness(VerilatedContext* ctx, const char* trace_file) : ctx_(ctx), top_(new Top{ctx, ""}) {
#if VM_TRACE
        if (trace_file) {
            trace_.reset(new VerilatedFstC);
            top_->trace(trace_.get(), 99);
            trace_->open(trace_file);
        }
#else
        if (trace_file) {
            std::cerr << "unit_harness: --trace needs a build with --trace-fst\n";
            std::exit(2);
        }
#endif
        top_->clk_i = 1;   // as the cocotb clock: high at time 0, rising edges at n * 10 ns
        top_->rst_i = 1;
        idle_inputs();
        top_->eval();
        dump();
        for (int i = 0; i < 4; ++i) step_raw();   // edge 0 plus three edges of reset
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

    bool run(const Job& j, const std::string& out_path, std::string& reply) {
        Top& d = *top_;
        Rng rng(j.seed);
        const uint32_t L = j.lanes;
        uint64_t total_out = 0;
        for (const Segment& s : j.segs) total_out += s.n_out;
        std::vector<uint8_t> data(total_out * L), last(total_out);
        std::vector<uint64_t> when(total_out), seg_figs;
        uint64_t got = 0, all_cycles = 0, all_load = 0;
        for (size_t si = 0; si < j.segs.size(); ++si) {
            const Segment& s = j.segs[si];
            const uint64_t start = cycle_;
            for (const Write& w : s.writes) {
                apply_write(w, L);
                if (!step(reply)) return false;
                d.cfg_we_i = 0; d.prm_we_i = 0;
#if defined(QMAC_UNIT_WINDOW)
                d.w_we_i = 0;
#endif
            }
            const uint64_t load_cycles = cycle_ - start;
            const uint64_t first = cycle_;
            const uint64_t seg_end = got + s.n_out;
            uint64_t sent = 0;
            bool offered = false;
            // the cocotb source offers its first beat after the edge following the last write
            if (!s.writes.empty() && !step(reply)) return false;
            while (got < seg_end || sent < s.n_in) {
                if (cycle_ - first > s.budget) {
                    std::ostringstream m;
                    m << "timeout in segment " << si << " after " << s.budget << " cycles with "
                      << (s.n_in - sent) << " input beats unsent and " << (seg_end - got)
                      << " of " << s.n_out << " output beats missing (cycle " << cycle_ << ")";
                    reply = m.str();
                    return false;
                }
                if (!offered && sent < s.n_in && !(j.in_stall && rng.ppm() < j.in_stall)) {
                    offer(&s.in[sent * j.in_bytes], L);
                    offered = true;
                }
                set_in_valid(offered);
                d.out_ready_i = !(j.out_stall && rng.ppm() < j.out_stall);
                d.clk_i = 0;
                d.eval();                      // settle the ready / valid outputs
                const bool in_fire = offered && in_ready();
                const bool out_fire = d.out_valid_o && d.out_ready_i;
                if (out_fire) {
                    if (got >= total_out) {
                        reply = "an output beat more than the job's " + std::to_string(total_out)
                                + " (cycle " + std::to_string(cycle_) + ")";
                        return false;
                    }
                    get_bytes(d.out_data_o, &data[got * L], int(L));
                    last[got] = d.out_last_o;
                }
                if (!edge_after_eval(reply)) return false;
                if (in_fire) { ++sent; offered = false; }
                if (out_fire) when[got++] = cycle_;
            }
            set_in_valid(false);
            d.out_ready_i = 0;
            const uint64_t cycles = s.n_out ? when[seg_end - 1] - first : 0;
            seg_figs.push_back(load_cycles);
            seg_figs.push_back(cycles);
            all_cycles += cycles;
            all_load += load_cycles;
        }
        std::ofstream f(out_path, std::ios::binary);
        const uint64_t h[2] = {uint64_t(j.segs.size()), total_out};
        f.write("QMACURS1", 8);
        f.write(reinterpret_cast<const char*>(h), sizeof h);
        f.write(reinterpret_cast<const char*>(seg_figs.data()), std::streamsize(seg_figs.size() * 8));
        f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
        f.write(reinterpret_cast<const char*>(last.data()), std::streamsize(last.size()));
        f.write(reinterpret_cast<const char*>(when.data()), std::streamsize(when.size() * 8));
        if (!f) { reply = "cannot write result file " + out_path; return false; }
        std::ostringstream m;
        m << all_cycles << " " << all_load << " " << total_out;
        reply = m.str();
        return true;
    }

  private:
    void apply_write(const Write& w, uint32_t lanes) {
        Top& d = *top_;
        if (w.kind == 0) {
            d.cfg_we_i = 1; d.cfg_addr_i = uint32_t(w.f[0]); d.cfg_wdata_i = uint32_t(w.f[1]);
        } else if (w.kind == 2) {
            d.prm_we_i = 1; d.prm_chan_i = uint32_t(w.f[0]);
            d.prm_bias_i = uint32_t(w.f[1]); d.prm_m0_i = uint32_t(w.f[2]);
            d.prm_shift_i = uint32_t(w.f[3]) & 0x3F; d.prm_zp_i = uint32_t(w.f[4]) & 0xFF;
            d.prm_act_min_i = uint32_t(w.f[5]) & 0xFF; d.prm_act_max_i = uint32_t(w.f[6]) & 0xFF;
        }
#if defined(QMAC_UNIT_WINDOW)
        else if (w.kind == 1) {
            d.w_we_i = 1; d.w_addr_i = uint32_t(w.f[0]);
            set_bytes(d.w_data_i, w.data.data(), int(lanes));
        }
#endif
        (void)lanes;
    }
#if defined(QMAC_UNIT_WINDOW)
    void offer(const uint8_t* b, uint32_t lanes) { set_bytes(top_->in_data_i, b, int(lanes)); }
    void set_in_valid(bool v) { top_->in_valid_i = v; }
    bool in_ready() const { return top_->in_ready_o; }
    void idle_inputs() {
        Top& d = *top_;
        d.cfg_we_i = 0; d.w_we_i = 0; d.prm_we_i = 0; d.in_valid_i = 0; d.out_ready_i = 0;
    }
#else
    void offer(const uint8_t* b, uint32_t lanes) {
        set_bytes(top_->a_data_i, b, int(lanes));
        set_bytes(top_->b_data_i, b + lanes, int(lanes));
        top_->a_last_i = b[2 * lanes];
    }
    void set_in_valid(bool v) { top_->a_valid_i = v; top_->b_valid_i = v; }
    bool in_ready() const { return top_->a_ready_o && top_->b_ready_o; }
    void idle_inputs() {
        Top& d = *top_;
        d.cfg_we_i = 0; d.prm_we_i = 0; d.a_valid_i = 0; d.b_valid_i = 0; d.out_ready_i = 0;
    }
#endif
    void dump() {
#if VM_TRACE
        if (trace_) trace_->dump(ctx_->time());
#endif
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
    void step_raw() {
        top_->clk_i = 0;
        top_->eval();
        edge_after_eval_raw();
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
    std::unique_ptr<Top> top_;
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
        ctx->coveragep()->write();           // +verilator+coverage+file+<f>, default coverage.dat
#endif
    }
    return status;
}
