// relay/queue_manager.cpp — placeholder until implemented.
