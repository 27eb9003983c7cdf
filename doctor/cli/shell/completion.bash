# bash completion for docker-doctor. Load it now with
#   source <(docker-doctor completion bash)
# or for every shell: docker-doctor completion bash > ~/.local/share/bash-completion/completions/docker-doctor
#
# The candidates come from `docker-doctor __complete WORD... CURRENT` (one per line, then
# `:DIRECTIVE`; directive bit 4: no file names).

_docker_doctor() {
    local line=${COMP_LINE:0:COMP_POINT} current candidate answer directive mark
    local -a words
    read -ra words <<< "$line"
    # The word being completed, whole: bash itself splits `web:80` at the colon.
    if [[ -z $line || $line == *[[:space:]] ]]; then
        current=""
    else
        current=${words[-1]}
        unset 'words[-1]'
    fi
    current=${current#[\"\']}  # an opening quote is not part of the word
    answer=$("${words[0]}" __complete "${words[@]:1}" "$current" 2>/dev/null) || return 0
    directive=${answer##*:}
    COMPREPLY=()
    while IFS= read -r candidate; do
        [[ -z $candidate || $candidate == :* ]] && continue
        candidate=${candidate%%$'\t'*}
        # bash replaces only what follows the last word break (web:80, --from=web)
        for mark in : =; do
            if [[ $current == *"$mark"* && $COMP_WORDBREAKS == *"$mark"* ]]; then
                candidate=${candidate#"${current%"$mark"*}$mark"}
            fi
        done
        COMPREPLY+=("$candidate")
    done <<< "$answer"
    if (( ${#COMPREPLY[@]} == 0 && (directive & 4) == 0 )); then
        compopt -o default 2>/dev/null  # file names, as bash would
    fi
    return 0
}

complete -F _docker_doctor docker-doctor
