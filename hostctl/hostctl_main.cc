// hostctl: the command-line client of hostd.
#include <iostream>

#include "hostctl/hostctl.h"

int main(int argc, char** argv) {
  return hosting::hostctl::Run(argc, argv, std::cout, std::cerr);
}
