// placeholder until config/load.cpp lands
