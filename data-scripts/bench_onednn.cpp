// ResNet-50's convolutions through oneDNN (Debian libdnnl-dev 2.6.3), the library under
// PyTorch's CPU convolutions, at batch 16 in oneDNN's own layouts (format_tag::any), best of 5:
// the reference for what a convolution can reach on this CPU (BENCHMARKS.md, issue 12). Same
// shapes as ops/examples/conv_profile.rs. Pass "bf16" to time bf16 inputs and weights.
//   apt-get install libdnnl-dev && g++ -O2 -o /tmp/bench_onednn data-scripts/bench_onednn.cpp -ldnnl
//   OMP_NUM_THREADS=2 /tmp/bench_onednn [bf16]
#include <oneapi/dnnl/dnnl.hpp>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <vector>
using namespace dnnl;
int main(int argc, char** argv) {
  auto dt = argc > 1 && !std::strcmp(argv[1], "bf16") ? memory::data_type::bf16 : memory::data_type::f32;
  engine eng(engine::kind::cpu, 0); stream s(eng);
  struct C { const char* name; int ci, co, k, st, pad, hw, times; };
  std::vector<C> cs = {
    {"conv1 7x7/2 3->64", 3, 64, 7, 2, 3, 224, 1}, {"res2 1x1 64->64", 64, 64, 1, 1, 0, 56, 1},
    {"res2 3x3 64->64", 64, 64, 3, 1, 1, 56, 3}, {"res2 1x1 64->256", 64, 256, 1, 1, 0, 56, 4},
    {"res2 1x1 256->64", 256, 64, 1, 1, 0, 56, 2}, {"res3 1x1 256->128", 256, 128, 1, 1, 0, 56, 1},
    {"res3 3x3/2 128->128", 128, 128, 3, 2, 1, 56, 1}, {"res3 3x3 128->128", 128, 128, 3, 1, 1, 28, 3},
    {"res3 1x1 128->512", 128, 512, 1, 1, 0, 28, 4}, {"res3 1x1/2 256->512", 256, 512, 1, 2, 0, 56, 1},
    {"res3 1x1 512->128", 512, 128, 1, 1, 0, 28, 3}, {"res4 1x1 512->256", 512, 256, 1, 1, 0, 28, 1},
    {"res4 3x3/2 256->256", 256, 256, 3, 2, 1, 28, 1}, {"res4 3x3 256->256", 256, 256, 3, 1, 1, 14, 5},
    {"res4 1x1 256->1024", 256, 1024, 1, 1, 0, 14, 6}, {"res4 1x1/2 512->1024", 512, 1024, 1, 2, 0, 28, 1},
    {"res4 1x1 1024->256", 1024, 256, 1, 1, 0, 14, 5}, {"res5 1x1 1024->512", 1024, 512, 1, 1, 0, 14, 1},
    {"res5 3x3/2 512->512", 512, 512, 3, 2, 1, 14, 1}, {"res5 3x3 512->512", 512, 512, 3, 1, 1, 7, 2},
    {"res5 1x1 512->2048", 512, 2048, 1, 1, 0, 7, 3}, {"res5 1x1/2 1024->2048", 1024, 2048, 1, 2, 0, 14, 1},
    {"res5 1x1 2048->512", 2048, 512, 1, 1, 0, 7, 2}};
  int N = 16; double total = 0, flop_all = 0;
  for (auto& c : cs) {
    int oh = (c.hw + 2 * c.pad - c.k) / c.st + 1;
    memory::desc src({N, c.ci, c.hw, c.hw}, dt, memory::format_tag::any);
    memory::desc wei({c.co, c.ci, c.k, c.k}, dt, memory::format_tag::any);
    memory::desc dst({N, c.co, oh, oh}, dt, memory::format_tag::any);
    convolution_forward::desc d(prop_kind::forward_inference, algorithm::convolution_direct, src, wei, dst,
                                {c.st, c.st}, {c.pad, c.pad}, {c.pad, c.pad});
    convolution_forward::primitive_desc pd(d, eng);
    memory sm(pd.src_desc(), eng), wm(pd.weights_desc(), eng), dm(pd.dst_desc(), eng);
    convolution_forward conv(pd);
    auto run = [&] { conv.execute(s, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, dm}}); s.wait(); };
    run();
    double best = 1e9;
    for (int r = 0; r < 5; r++) { auto t = std::chrono::steady_clock::now(); run();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count()); }
    double flop = 2.0 * N * oh * oh * c.co * c.ci * c.k * c.k;
    total += best * c.times; flop_all += flop * c.times;
    printf("| %s | %d | %.1f | %.0f | %s |\n", c.name, c.times, best * 1e3, flop / best / 1e9, pd.impl_info_str());
  }
  printf("ResNet-50 convolutions, batch %d: %.3f s (%.0f GFLOP/s, %.1f img/s)\n", N, total, flop_all / total / 1e9, N / total);
}
