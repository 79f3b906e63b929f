"""Vocabulary of the synthetic reports (English and Chinese): locations, morphology, treatment, counts,
pathology, non-polyp findings and boilerplate. Each entry lists interchangeable phrasings; the renderer
picks one at random, so every phrasing here must mean exactly the same label."""

from __future__ import annotations

# location key -> (English phrasings, Chinese phrasings)
LOCATION_TEXT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cecum": (("cecum", "caecum", "cecal base"), ("盲肠", "盲肠底部")),
    "ascending": (("ascending colon", "A-colon", "ascending colon"), ("升结肠",)),
    "hepatic_flexure": (("hepatic flexure", "HF", "hepatic flexure"), ("肝曲", "结肠肝曲")),
    "transverse": (("transverse colon", "T-colon", "mid transverse colon"), ("横结肠", "横结肠中段")),
    "splenic_flexure": (("splenic flexure", "SF"), ("脾曲", "结肠脾曲")),
    "descending": (("descending colon", "D-colon"), ("降结肠",)),
    "sigmoid": (("sigmoid colon", "sigmoid", "S-colon"), ("乙状结肠",)),
    "rectum": (("rectum", "distal rectum", "rectum"), ("直肠", "直肠下段")),
    "rectosigmoid": (("rectosigmoid junction", "RS junction"), ("直乙交界", "直肠乙状结肠交界处")),
    "ileum": (("terminal ileum", "TI"), ("回肠末段", "末端回肠")),
    "appendiceal_orifice": (("appendiceal orifice", "appendiceal orifice"), ("阑尾开口", "阑尾开口处")),
    "ileocecal_valve": (("ileocecal valve", "ICV"), ("回盲瓣",)),
    "anastomosis": (("anastomosis", "anastomotic site"), ("吻合口",)),
}

MORPHOLOGY_TEXT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pedunculated": (
        ("pedunculated", "Paris 0-Ip", "pedunculated (0-Ip)", "stalked"),
        ("有蒂", "山田IV型", "Paris 0-Ip型", "长蒂"),
    ),
    "sessile": (
        ("sessile", "Paris 0-Is", "Paris 0-Isp", "semi-pedunculated (0-Isp)", "broad-based sessile"),
        ("无蒂", "广基", "山田II型", "山田III型", "亚蒂", "Paris 0-Is型", "0-Isp型"),
    ),
    "flat": (
        ("flat", "Paris 0-IIa", "flat elevated (0-IIa)", "laterally spreading (LST-G)", "LST-NG type"),
        ("平坦", "扁平隆起", "0-IIa型", "侧向发育型(LST-G)", "LST-NG型"),
    ),
}

# removal key -> (English passive clauses, Chinese clauses)
REMOVAL_TEXT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cold_snare": (
        (
            "removed by cold snare polypectomy",
            "resected with a cold snare",
            "removed (cold snare)",
            "completely removed with cold snare and retrieved",
        ),
        ("予冷圈套器切除", "予冷圈套切除，标本回收", "行CSP切除"),
    ),
    "snare": (
        ("removed with a snare", "resected en bloc with a snare", "snared and retrieved"),
        ("予圈套器切除", "予圈套器电切", "予高频电切除"),
    ),
    "hot_snare": (
        ("removed with hot snare", "resected by hot snare polypectomy after clip placement on the stalk"),
        ("予热圈套切除", "予高频电圈套切除，创面钛夹夹闭"),
    ),
    "emr": (
        (
            "removed by EMR",
            "resected by endoscopic mucosal resection after submucosal lifting",
            "removed en bloc (EMR)",
        ),
        ("予EMR切除", "行内镜下黏膜切除术(EMR)", "黏膜下注射后予EMR完整切除"),
    ),
    "forceps": (
        ("removed with cold forceps", "removed by forceps polypectomy", "completely removed with jumbo forceps"),
        ("予活检钳钳除", "予钳除", "活检钳完整钳除"),
    ),
    "none": (
        (
            "biopsied but not removed",
            "not removed; referred for EMR",
            "left in place (on anticoagulation)",
            "not resected at this time",
        ),
        ("取活检1块，未予切除", "未予处理", "暂未切除，建议择期EMR", "未切除"),
    ),
}

EN_NUM = {1: ("one", "1", "a single"), 2: ("two", "2"), 3: ("three", "3")}
EN_NUM_CAP = {1: ("One", "A single"), 2: ("Two",), 3: ("Three",)}
EN_MULTI = ("multiple", "several", "numerous", "a few")
ZH_NUM = {1: ("一枚", "1枚", "一个", "1个", "一"), 2: ("两枚", "2枚", "两个", "二枚"), 3: ("三枚", "3枚", "三个")}
ZH_MULTI = ("数枚", "多发", "多枚", "散在多个")

# pathology category -> (English phrasings, Chinese phrasings)
PATHOLOGY_TEXT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "adenoma": (
        (
            "tubular adenoma",
            "tubulovillous adenoma",
            "villous adenoma",
            "tubular adenoma with low-grade dysplasia",
            "adenoma with high-grade dysplasia",
            "fragments of tubular adenoma",
        ),
        ("管状腺瘤", "管状绒毛状腺瘤", "绒毛状腺瘤", "管状腺瘤伴低级别上皮内瘤变", "腺瘤伴高级别上皮内瘤变"),
    ),
    "sessile_serrated": (
        ("sessile serrated lesion", "sessile serrated adenoma", "sessile serrated lesion without dysplasia"),
        ("无蒂锯齿状病变", "广基锯齿状腺瘤", "无蒂锯齿状腺瘤/息肉"),
    ),
    "hyperplastic": (
        ("hyperplastic polyp", "hyperplastic polyp, no dysplasia"),
        ("增生性息肉", "增生性息肉，未见异型"),
    ),
    "inflammatory": (("inflammatory polyp", "inflammatory pseudopolyp"), ("炎性息肉", "炎性假息肉")),
    "adenocarcinoma": (
        (
            "adenocarcinoma",
            "invasive adenocarcinoma, moderately differentiated",
            "well-differentiated adenocarcinoma",
            "adenocarcinoma, poorly differentiated",
        ),
        ("腺癌", "中分化腺癌", "高分化腺癌", "低分化腺癌", "腺癌（中分化）"),
    ),
    "other": (
        (
            "chronic active colitis",
            "mild chronic inflammation of the colonic mucosa",
            "colonic mucosa with mild chronic inflammation, no dysplasia",
        ),
        ("黏膜慢性炎", "黏膜慢性活动性炎", "结肠黏膜轻度慢性炎"),
    ),
}

# non-polyp findings: (English sentences, Chinese sentences, English impression, Chinese diagnosis)
OTHER_TEXT: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "diverticula": (
        (
            "Scattered diverticula in the sigmoid colon.",
            "Multiple small-mouthed diverticula in the sigmoid and descending colon.",
            "A few diverticula were noted in the ascending colon.",
        ),
        ("乙状结肠见多发憩室。", "乙状结肠及降结肠散在憩室，未见炎症。", "升结肠见一憩室开口。"),
        ("Diverticulosis.", "Sigmoid diverticulosis."),
        ("结肠憩室", "乙状结肠憩室"),
    ),
    "hemorrhoids": (
        (
            "Non-bleeding grade I internal hemorrhoids on retroflexion.",
            "Retroflexion in the rectum showed internal hemorrhoids.",
            "Small internal haemorrhoids.",
        ),
        ("直肠翻转见内痔。", "肛门口见内痔，无活动性出血。", "齿状线上方见痔核。"),
        ("Internal hemorrhoids.", "Hemorrhoids."),
        ("内痔", "混合痔"),
    ),
    "colitis": (
        (
            "Patchy erythema and loss of vascular pattern from the rectum to the sigmoid colon, with scattered "
            "erosions, consistent with colitis.",
            "Mild diffuse erythema and friability in the rectum; biopsies taken.",
        ),
        ("直肠至乙状结肠黏膜充血水肿，血管纹理模糊，可见散在糜烂。", "直肠黏膜弥漫性充血，触之易出血，取活检2块。"),
        ("Colitis, biopsied.", "Proctosigmoiditis."),
        ("结肠炎", "溃疡性结肠炎？"),
    ),
    "melanosis": (
        ("Brown pigmentation of the colonic mucosa, consistent with melanosis coli.",),
        ("全结肠黏膜呈棕褐色豹纹样改变。",),
        ("Melanosis coli.",),
        ("结肠黑变病",),
    ),
}

EN_NORMAL = (
    "The colonic mucosa appeared normal throughout.",
    "The remainder of the colon was normal.",
    "Normal mucosa with a clear vascular pattern throughout the colon.",
)
EN_NO_POLYP = (
    "No polyps were seen.",
    "No polyps or masses identified.",
    "No polyps.",
    "There were no polyps.",
    "No polyps, masses or vascular lesions were found.",
)
EN_NO_POLYP_ONLY = ("No polyps were seen.", "No polyps.", "There were no polyps.", "No polyps elsewhere.")
EN_REMAINDER_NORMAL = ("The remainder of the colon was normal.", "The rest of the mucosa appeared normal.")
EN_NO_OTHER_POLYP = ("No other polyps were seen.", "The rest of the colon was free of polyps.", "No additional polyps.")
ZH_NORMAL = (
    "所见回盲部、升结肠、横结肠、降结肠、乙状结肠及直肠黏膜光滑，血管纹理清晰。",
    "余所见结肠黏膜未见明显异常。",
    "全结肠黏膜光滑，色泽正常。",
)
ZH_NO_POLYP = ("未见息肉及新生物。", "未见息肉、溃疡及肿物。", "未见明显息肉。", "全结肠未见息肉。")
ZH_NO_POLYP_ONLY = ("未见明显息肉。", "全结肠未见息肉。", "余结肠未见息肉。")
ZH_REMAINDER_NORMAL = ("余所见结肠黏膜未见明显异常。", "余肠段黏膜光滑。")
ZH_NO_OTHER_POLYP = ("余结肠未见息肉。", "余所见黏膜未见息肉及新生物。", "其余肠段未见息肉。")

EN_INDICATION = (
    "screening",
    "positive FIT",
    "change in bowel habit",
    "rectal bleeding",
    "iron deficiency anemia",
    "abdominal pain",
    "family history of colorectal cancer",
)
ZH_INDICATION = ("体检筛查", "便潜血阳性", "排便习惯改变", "便血", "腹痛待查", "贫血待查")
EN_PREP = (
    "Bowel preparation: good (BBPS {b}).",
    "The quality of the bowel preparation was {q}.",
    "Prep {q}, Boston Bowel Preparation Scale {b}.",
    "BBPS {b}.",
)
ZH_PREP = ("肠道准备：{q}（BBPS {b}分）。", "肠道准备{q}，BBPS {b}分。", "肠道清洁度{q}。")
EN_QUALITY = ("good", "excellent", "adequate", "fair")
ZH_QUALITY = ("良好", "优", "一般", "尚可")
EN_EXTENT = (
    "The colonoscope was advanced to the cecum, identified by the appendiceal orifice and ileocecal valve.",
    "Cecal intubation was confirmed; the terminal ileum was intubated and appeared normal.",
    "The scope was passed to the cecum without difficulty.",
)
ZH_EXTENT = ("循腔进镜至回盲部，见阑尾开口及回盲瓣。", "进镜至回肠末段，所见回肠黏膜未见异常。", "顺利进镜至回盲部。")
EN_WITHDRAWAL = ("Withdrawal time: {m} min.", "Withdrawal time was {m} minutes.")
ZH_WITHDRAWAL = ("退镜时间{m}分钟。", "退镜观察{m}min。")
EN_HISTORY = (
    "History of polypectomy in {y}.",
    "S/p polypectomy {y}, here for surveillance.",
    "Prior colonoscopy ({y}) with removal of adenomatous polyps.",
    "Hx of polyps removed in {y}.",
)
ZH_HISTORY = ("既往结肠息肉切除术后{k}年，复查。", "{y}年曾行结肠息肉切除术。", "既往息肉EMR术后复查。")
EN_SCAR = (
    "A polypectomy scar was seen in the {loc} without residual polyp.",
    "No recurrence at the prior polypectomy site.",
)
ZH_SCAR = ("{loc}见息肉切除术后瘢痕，未见残留及复发。", "原息肉切除处未见复发。")
