// relay/queue_control.cpp — placeholder until implemented.
