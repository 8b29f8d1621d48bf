// tests/support/testzones_main.cpp — `danerelay-testzones DIR`: builds the standard test world
// (tests/support/world.hpp) into DIR and prints its domains and the danerelay.toml that uses it.
// The quick start runs `danerelay resolve -c DIR/danerelay.toml <domains>` over it.
#include <cstdlib>
#include <exception>
#include <iostream>

#include "tests/support/world.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: danerelay-testzones DIR\n";
    return 64;
  }
  try {
    auto world = danerelay::testsupport::build_world(argv[1]);
    std::cout << "config " << world.config_file.string() << '\n';
    for (const auto& d : world.domains) std::cout << "domain " << d.name << "  # " << d.scenario << '\n';
  } catch (const std::exception& e) {
    std::cerr << "danerelay-testzones: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
