// relay/cmd_queue.cpp — placeholder until implemented.
