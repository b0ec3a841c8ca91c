// Subscriptions (RFC 3501 section 6.3.6), kept per user in the store's state, one name per line. A user who has
// never subscribed or unsubscribed has none kept: every mailbox then counts as subscribed, so a client that
// shows only subscribed mailboxes still shows them all.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tern/sdk/store.hpp"

namespace tern::imap {

// The user's subscribed names, sorted; nullopt when none are kept. Worker thread: reads the store.
std::optional<std::vector<std::string>> load_subscriptions(sdk::State& state, const std::string& user);

// Subscribes (or unsubscribes) one name; a user with none kept starts from every mailbox in `existing`.
// Serialized within the process, so two sessions changing one user's list at once lose neither change.
void change_subscription(sdk::State& state, const std::string& user, const std::string& name, bool subscribe,
                         const std::vector<sdk::MailboxInfo>& existing);

}  // namespace tern::imap
