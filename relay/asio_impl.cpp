// relay/asio_impl.cpp — the single translation unit that compiles Boost.Asio and Asio SSL.
// Every other file is built with BOOST_ASIO_SEPARATE_COMPILATION and sees declarations only,
// which keeps a full build quick on two cores.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
