// Vacation auto-replies: when a message may be answered (RFC 3834 section 2, and RFC 5230's rules: never to
// the null sender, lists, bulk mail, other automatic mail or system senders, only to mail addressed to the
// user), and the answer itself. Internal to plugins/lua; tx:vacation() waits on it (lua_waits.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::lua {

struct VacationRequest {
  std::string user;                    // whose mailbox: the reply comes from this address
  std::vector<std::string> addresses;  // the user's other addresses (aliases): mail to any of them is answered
  std::string sender;                  // the envelope sender: the reply goes there
  int days = 7;                        // one reply per sender in this many days
  std::string subject;                 // empty: "Auto: " and the message's subject
  std::string text;                    // the reply's body, UTF-8
};

// Why `message` gets no reply, or nullopt when it may get one.
std::optional<std::string> vacation_refusal(std::string_view message, const VacationRequest& request);

// The reply to `message`: a whole message, CRLF line ends, from the user to the sender, marked auto-replied.
std::string vacation_reply(std::string_view message, const VacationRequest& request, std::string_view date,
                           std::string_view message_id);

// The store's key that remembers the last reply of `user` to `sender`.
std::string vacation_key(std::string_view user, std::string_view sender);

}  // namespace tern::lua
