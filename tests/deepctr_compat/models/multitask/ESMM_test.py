# Vendored from DeepCTR-Torch 0.2.9 (https://github.com/shenweichen/DeepCTR-Torch), tests/models/multitask/.
# Copyright the DeepCTR-Torch authors. Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain a copy of the License at
# http://www.apache.org/licenses/LICENSE-2.0. Unless required by applicable law or agreed to in writing,
# software distributed under the License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS
# OF ANY KIND, either express or implied. See the License for the specific language governing permissions and
# limitations under the License.
# Modified for recstack: the deepctr_torch imports are mapped to recstack's (models); reformatted.
import pytest

from recstack.models import ESMM

from ...utils_mtl import SAMPLE_SIZE, check_mtl_model, get_device, get_mtl_test_data


@pytest.mark.parametrize(
    "num_experts, tower_dnn_hidden_units, task_types, sparse_feature_num, dense_feature_num",
    [(3, (32, 16), ["binary", "binary"], 3, 3)],
)
def test_ESMM(num_experts, tower_dnn_hidden_units, task_types, sparse_feature_num, dense_feature_num):
    model_name = "ESMM"
    sample_size = SAMPLE_SIZE
    x, y_list, feature_columns = get_mtl_test_data(
        sample_size, sparse_feature_num=sparse_feature_num, dense_feature_num=dense_feature_num
    )

    model = ESMM(
        feature_columns, tower_dnn_hidden_units=tower_dnn_hidden_units, task_types=task_types, device=get_device()
    )
    check_mtl_model(model, model_name, x, y_list, task_types)


if __name__ == "__main__":
    pass
