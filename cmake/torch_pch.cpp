// Carrier translation unit for the shared LibTorch precompiled header (see CMakeLists.txt).
namespace harvest::detail {
int torch_pch_anchor() { return 0; }
}  // namespace harvest::detail
