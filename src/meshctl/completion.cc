// Shell completion for meshctl: verbs, their flags, and live values (agents,
// tasks, nodes) asked of the mesh by meshctl itself.

#include <cstring>

#include "meshctl/meshctl.h"

namespace a2amesh::meshctl {
namespace {

constexpr const char kBash[] =
    R"BASH(# bash completion for meshctl: source <(meshctl completion bash)
_meshctl_column1() {
  # First column of a meshctl table, without its header.
  meshctl "$@" 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_meshctl() {
  local cur prev verb i
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  local verbs="nodes agents card skills tasks task send cancel approve deny audit route watch drain health version config completion"
  local global="--server -s --output -o --timeout --tls --tls-ca --tls-cert --tls-key --token --token-file --context --config --help --version"
  verb=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case " $verbs " in *" ${COMP_WORDS[i]} "*) verb="${COMP_WORDS[i]}"; break ;; esac
  done
  case "$prev" in
    -o|--output) COMPREPLY=($(compgen -W "table wide json yaml" -- "$cur")); return ;;
    --tls-ca|--tls-cert|--tls-key|--token-file|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --agent) COMPREPLY=($(compgen -W "$(_meshctl_column1 agents)" -- "$cur")); return ;;
    --node) COMPREPLY=($(compgen -W "$(_meshctl_column1 nodes)" -- "$cur")); return ;;
    --skill) COMPREPLY=($(compgen -W "$(_meshctl_column1 skills)" -- "$cur")); return ;;
    --state) COMPREPLY=($(compgen -W "submitted working completed failed canceled input-required rejected auth-required" -- "$cur")); return ;;
  esac
  if [[ -z "$verb" ]]; then
    COMPREPLY=($(compgen -W "$verbs $global" -- "$cur"))
    return
  fi
  local flags=""
  case "$verb" in
    agents) flags="--skill --tag --node" ;;
    card) [[ "$cur" != -* ]] && { COMPREPLY=($(compgen -W "$(_meshctl_column1 agents)" -- "$cur")); return; } ;;
    tasks) flags="--state --skill --context --agent --limit --local" ;;
    task|cancel|approve|deny) [[ "$cur" != -* ]] && { COMPREPLY=($(compgen -W "$(_meshctl_column1 tasks)" -- "$cur")); return; } ;;
    send) flags="--skill --agent --tag --data --context --task --accept --stream --no-wait" ;;
    route) flags="--skill --agent --tag --input --accept --hop" ;;
    drain) [[ "$cur" != -* ]] && { COMPREPLY=($(compgen -W "$(_meshctl_column1 nodes)" -- "$cur")); return; } ;;
    health) flags="--service" ;;
    version) flags="--client" ;;
    completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")); return ;;
  esac
  COMPREPLY=($(compgen -W "$flags $global" -- "$cur"))
}
complete -F _meshctl meshctl
)BASH";

constexpr const char kZsh[] = R"ZSH(#compdef meshctl
# zsh completion for meshctl: meshctl completion zsh > "${fpath[1]}/_meshctl"
_meshctl_column1() {
  meshctl "$@" 2>/dev/null | awk 'NR > 1 { print $1 }'
}

_meshctl() {
  local -a verbs global
  verbs=(
    'nodes:list the nodes of the mesh'
    'agents:list the agents of the mesh'
    'card:show an agent'"'"'s A2A card'
    'skills:list the skills offered in the mesh'
    'tasks:list tasks'
    'task:show a task and its subtasks'
    'send:send a task'
    'cancel:cancel a task'
    'approve:approve a task that waits for an approval'
    'deny:deny a task that waits for an approval'
    'audit:show the audit log'
    'route:explain where a request would go'
    'watch:print catalog changes live'
    'drain:stop a node taking new client work'
    'health:check a node'"'"'s health'
    'version:print versions'
    'config:manage contexts (use-context, get-contexts, set-context)'
    'completion:print a completion script'
  )
  global=(
    '(-s --server)'{-s,--server}'[host:port of any node]:server:'
    '(-o --output)'{-o,--output}'[output format]:format:(table wide json yaml)'
    '--timeout[deadline of each call]:duration:'
    '--tls[connect with TLS]'
    '--tls-ca[CA bundle]:file:_files'
    '--tls-cert[client certificate]:file:_files'
    '--tls-key[client key]:file:_files'
    '--token-file[file with the bearer token]:file:_files'
    '--context[context of the config file]:context:'
    '--config[config file]:file:_files'
    '--token[bearer token]:token:'
  )
  if (( CURRENT == 2 )); then
    _describe 'verb' verbs
    return
  fi
  local verb=${words[2]}
  case $verb in
    agents) _arguments $global '--skill[skill]:skill:($(_meshctl_column1 skills))' \
              '*--tag[tag]:tag:' '--node[node]:node:($(_meshctl_column1 nodes))' ;;
    card) _arguments $global '1:agent:($(_meshctl_column1 agents))' ;;
    tasks) _arguments $global '--state[state]:state:(submitted working completed failed canceled input-required rejected auth-required)' \
             '--skill[skill]:skill:' '--context[context id]:context:' '--agent[agent]:agent:' \
             '--limit[how many]:limit:' '--local[only the answering node]' ;;
    task|cancel|approve|deny) _arguments $global '1:task:($(_meshctl_column1 tasks))' ;;
    send) _arguments $global '--skill[skill]:skill:($(_meshctl_column1 skills))' \
            '--agent[agent]:agent:($(_meshctl_column1 agents))' '*--tag[tag]:tag:' \
            '--data[JSON or @file]:data:_files' '--context[context id]:context:' \
            '--task[task id]:task:' '*--accept[media type]:type:' '--stream[print events live]' '--no-wait[do not wait for the result]' \
            '*:text:' ;;
    route) _arguments $global '--skill[skill]:skill:($(_meshctl_column1 skills))' \
             '--agent[agent]:agent:($(_meshctl_column1 agents))' '*--tag[tag]:tag:' \
             '*--input[media type]:type:' '*--accept[media type]:type:' '*--hop[agent@node]:hop:' ;;
    drain) _arguments $global '1:node:($(_meshctl_column1 nodes))' ;;
    health) _arguments $global '--service[health service]:service:(liveness)' ;;
    version) _arguments $global '--client[only meshctl'"'"'s version]' ;;
    completion) _arguments '1:shell:(bash zsh)' ;;
    *) _arguments $global ;;
  esac
}
_meshctl "$@"
)ZSH";

}  // namespace

const char* CompletionScript(const char* shell) {
  if (std::strcmp(shell, "bash") == 0) return kBash;
  if (std::strcmp(shell, "zsh") == 0) return kZsh;
  return "";
}

}  // namespace a2amesh::meshctl
