#compdef docker-doctor
# zsh completion for docker-doctor. Load it now with
#   source <(docker-doctor completion zsh)
# or for every shell: docker-doctor completion zsh > "${fpath[1]}/_docker-doctor"
#
# The candidates come from `docker-doctor __complete WORD... CURRENT` (one per line, then
# `:DIRECTIVE`; directive bit 4: no file names).

_docker_doctor() {
    local -a answer candidates
    local directive
    answer=("${(@f)$("${words[1]}" __complete "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
    directive=${answer[-1]#:}
    candidates=("${(@)answer[1,-2]%%$'\t'*}")
    if (( ${#candidates} )); then
        compadd -U -Q -- "${(@)candidates}"  # -U: already matched here (explain app_ finds APP_…)
    elif (( (directive & 4) == 0 )); then
        _files
    fi
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _docker_doctor "$@"
else
    compdef _docker_doctor docker-doctor
fi
