// The tool's journal commands (journal_cli.cc).
#ifndef XDISRUPTOR_TOOLS_JOURNAL_CLI_H_
#define XDISRUPTOR_TOOLS_JOURNAL_CLI_H_

#include <string>

namespace xdisruptor::tool {

int JournalRecord(const std::string& ring, const std::string& directory);
int JournalReplay(const std::string& directory, const std::string& ring);
int JournalStat(const std::string& directory, bool json);
int JournalVerify(const std::string& directory);

}  // namespace xdisruptor::tool

#endif  // XDISRUPTOR_TOOLS_JOURNAL_CLI_H_
