// relay/dsn.cpp — placeholder until implemented.
