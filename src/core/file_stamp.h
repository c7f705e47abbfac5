#ifndef A2AMESH_CORE_FILE_STAMP_H_
#define A2AMESH_CORE_FILE_STAMP_H_

#include <string>

namespace a2amesh {

// What changes when a file is replaced or edited: its inode (a rename over
// it), size and modification time (whose granularity may be a few ms). ""
// if the file cannot be read. For files reloaded when they change (TLS
// material, token files, JWKS).
std::string FileStamp(const std::string& path);

}  // namespace a2amesh

#endif  // A2AMESH_CORE_FILE_STAMP_H_
