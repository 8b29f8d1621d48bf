// relay/inbound_store.cpp — placeholder until implemented.
