// relay/spool.cpp — placeholder until implemented.
