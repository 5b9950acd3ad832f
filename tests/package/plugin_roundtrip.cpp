// A program linked against storage_plugin, a user's shared library that
// links Varve::storage. Prints "plugin roundtrip: ok" and exits 0 when the
// library's round trip succeeds; otherwise says what went wrong, exits 1.
#include <stdlib.h>

#include <filesystem>
#include <iostream>
#include <string>

extern "C" const char* storage_plugin_roundtrip(const char* dir);

int main() {
  char pattern[] = "/tmp/varve-package-plugin.XXXXXX";
  if (!mkdtemp(pattern)) {
    std::cerr << "plugin roundtrip: no temporary directory\n";
    return 1;
  }
  const std::string what = storage_plugin_roundtrip((std::string(pattern) + "/store").c_str());
  std::filesystem::remove_all(pattern);
  if (!what.empty()) {
    std::cerr << "plugin roundtrip: FAILED: " << what << "\n";
    return 1;
  }
  std::cout << "plugin roundtrip: ok\n";
  return 0;
}
