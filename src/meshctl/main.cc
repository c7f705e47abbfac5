#include <iostream>

#include "meshctl/meshctl.h"

int main(int argc, char** argv) { return a2amesh::meshctl::Run(argc, argv, std::cout, std::cerr); }
