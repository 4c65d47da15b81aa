// A command started with a standard stream closed (`vae train ... >&-`, a service manager that
// closes stdin) would hand that descriptor, 0, 1 or 2, to the next file it opens: a checkpoint
// opened as descriptor 1 then receives the progress lines. So before anything is opened, each
// closed standard stream is pointed at /dev/null.
#pragma once

namespace tools {

/// Opens /dev/null on each of the descriptors 0, 1, 2 that is closed. If the standard output
/// was, says so on the standard error (naming `program`), since what the command prints is
/// then discarded; `where` says where a training run's figures are kept instead.
void open_closed_standard_streams(const char* program, const char* where);

}  // namespace tools
