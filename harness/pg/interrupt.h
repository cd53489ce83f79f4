// Ctrl-C and SIGTERM for PostgreSQL work: while a guard lives, a signal
// cancels the statement running on its connection (sys/interrupt.h takes
// the signals).
#pragma once

#include "harness/pg/connection.h"
#include "harness/sys/interrupt.h"

namespace harness::pg {

// While alive, a signal cancels the statement running on `conn`. Guards
// may watch one connection at two levels (the rehearsal's, the
// migrator's): the outer one still watches it when the inner one ends.
class CancelOnInterrupt {
 public:
  explicit CancelOnInterrupt(Connection& conn) : guard_([&conn] { conn.Cancel(); }) {}

 private:
  sys::OnInterrupt guard_;
};

}  // namespace harness::pg
