# cmake/layers.cmake — the architecture as a configure-time check. Every source folder has a rank;
# a folder may use (link, or #include from) folders of a lower rank and itself, never one of its
# own rank or above. A violation stops `cmake` with the file and line, so an arrow that points the
# wrong way cannot be built, let alone merged. README "Architecture" draws the same picture.
set(DANERELAY_LAYERS
  smtp/syntax    -1   # smtp/syntax.{hpp,cpp}: host names, address literals, xtext, dates; uses nothing
  config          0   # plain structs (config_types) and the TOML loader (relay_config)
  dns             1   # vocabulary, the RFC 7672 planner, libunbound
  tls             2   # the TLS policy (pure) and OpenSSL's DANE
  smtp            3   # SMTP protocol pieces, the client session, the inbound server
  relay/core      4   # the relay's shared vocabulary
  relay/delivery  5   # one delivery attempt
  relay/control   5   # what may be asked of the queue; the control socket
  relay/queue     6   # spool, scheduler, notices
  relay/metrics   6   # the metrics registry, its exposition and the metrics/health HTTP listener
  relay/posture   6   # the posture history, its file and the posture page
  relay/daemon    7   # the wiring of `run`
  relay/cli       8)  # main and the subcommands

function(_danerelay_rank_of path out_rank out_folder)
  set(best_rank "")
  set(best_folder "")
  set(best_len 0)
  list(LENGTH DANERELAY_LAYERS n)
  math(EXPR last "${n} - 1")
  foreach(i RANGE 0 ${last} 2)
    list(GET DANERELAY_LAYERS ${i} folder)
    math(EXPR j "${i} + 1")
    list(GET DANERELAY_LAYERS ${j} rank)
    string(LENGTH "${folder}" len)
    string(FIND "${path}/" "${folder}/" at)
    if(at EQUAL 0 AND len GREATER best_len)
      set(best_rank ${rank})
      set(best_folder ${folder})
      set(best_len ${len})
    endif()
  endforeach()
  set(${out_rank} "${best_rank}" PARENT_SCOPE)
  set(${out_folder} "${best_folder}" PARENT_SCOPE)
endfunction()

# Allowed when `to` is the same folder or ranks strictly lower.
function(_danerelay_check from_folder from_rank to_path where)
  _danerelay_rank_of("${to_path}" to_rank to_folder)
  if(to_rank STREQUAL "" OR to_folder STREQUAL from_folder)
    return()
  endif()
  if(NOT to_rank LESS from_rank)
    message(FATAL_ERROR "layering: ${where}: ${from_folder} (rank ${from_rank}) must not use ${to_folder} "
                        "(rank ${to_rank}); see cmake/layers.cmake")
  endif()
endfunction()

function(danerelay_check_layers)
  list(LENGTH DANERELAY_LAYERS n)
  math(EXPR last "${n} - 1")
  foreach(i RANGE 0 ${last} 2)
    list(GET DANERELAY_LAYERS ${i} folder)
    math(EXPR j "${i} + 1")
    list(GET DANERELAY_LAYERS ${j} rank)
    set(dir "${PROJECT_SOURCE_DIR}/${folder}")
    if(NOT IS_DIRECTORY "${dir}")
      continue()  # a layer that is a file stem (smtp/syntax), checked with its folder's files
    endif()
    # Links: every target defined in the folder, against every project target it links.
    get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
    foreach(t IN LISTS targets)
      get_target_property(tlayer ${t} DANERELAY_LAYER)
      if(tlayer)
        _danerelay_rank_of("${tlayer}" trank tfolder)
      else()
        set(trank ${rank})
        set(tfolder ${folder})
      endif()
      get_target_property(links ${t} LINK_LIBRARIES)
      get_target_property(ilinks ${t} INTERFACE_LINK_LIBRARIES)
      foreach(l IN LISTS links ilinks)
        if(TARGET "${l}")
          get_target_property(imported ${l} IMPORTED)
          if(NOT imported)
            # A target may name its layer (smtp_syntax lives in smtp/ but ranks below everything).
            get_target_property(lrel ${l} DANERELAY_LAYER)
            if(NOT lrel)
              get_target_property(ldir ${l} SOURCE_DIR)
              file(RELATIVE_PATH lrel "${PROJECT_SOURCE_DIR}" "${ldir}")
            endif()
            _danerelay_check("${tfolder}" ${trank} "${lrel}" "${folder}/CMakeLists.txt: target ${t} links ${l}")
          endif()
        endif()
      endforeach()
    endforeach()
    # Includes: every project header a source or header of the folder names.
    file(GLOB files "${dir}/*.cpp" "${dir}/*.hpp")
    foreach(f IN LISTS files)
      file(STRINGS "${f}" lines REGEX "^#include \"[a-z_/]+\\.hpp\"")
      foreach(line IN LISTS lines)
        string(REGEX REPLACE "^#include \"([a-z_/]+)\\.hpp\".*" "\\1" inc_path "${line}")
        file(RELATIVE_PATH frel "${PROJECT_SOURCE_DIR}" "${f}")
        string(REGEX REPLACE "\\.[ch]pp$" "" fstem "${frel}")
        _danerelay_rank_of("${fstem}" frank ffolder)
        _danerelay_check("${ffolder}" ${frank} "${inc_path}" "${frel}: ${line}")
      endforeach()
    endforeach()
  endforeach()
endfunction()
