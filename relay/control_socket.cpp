// relay/control_socket.cpp — placeholder until implemented.
